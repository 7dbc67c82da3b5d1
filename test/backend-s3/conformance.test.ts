/**
 * The backend conformance suite (test/helpers/conformance.ts) against the S3 backend on a real S3-compatible server
 * (s3rver, test/helpers/s3-server.ts): once over a whole bucket with the metadata cache on (the default), once under
 * a key prefix with the cache off, so every answer comes from S3 itself. Capabilities gate what S3 does not do
 * (random writes, hard links, atomic rename, real directories, statfs). Imports compiled output.
 */
import t from 'tap'
import { connect, s3Settings } from '../../plugins/backend-s3/dist/index.js'
import { fsxError } from '../../dist/errors.js'
import { conformance } from '../helpers/conformance.js'
import { S3_ACCESS_KEY, S3_SECRET_KEY, startS3Server } from '../helpers/s3-server.js'

const kit = { fsxError }
process.env.AWS_ACCESS_KEY_ID = S3_ACCESS_KEY
process.env.AWS_SECRET_ACCESS_KEY = S3_SECRET_KEY

const s3 = await startS3Server(t)
if (s3 !== undefined) {
  void conformance(t, 's3 (whole bucket, cache on)', async () => {
    const backend = await connect({ bucket: s3.bucket, prefix: '' }, s3Settings(s3.options), kit)
    return { backend, cleanup: async () => {} }
  })

  void conformance(t, 's3 (under a prefix, cache off)', async () => {
    const backend = await connect({ bucket: s3.bucket, prefix: 'under/a prefix@x/' }, s3Settings({ ...s3.options, s3ListCacheTtl: 0 }), kit)
    return { backend, cleanup: async () => {} }
  })
}
