/**
 * The `command_not_found` hook: `fsx mont ./data ./mnt` suggests `mount`.
 *
 * @oclif/plugin-not-found does the interactive part (on a terminal it asks "Did you mean mount?" and runs it on
 * yes); this hook wraps it for two things it does not do for fsx: with the space topic separator oclif hands over
 * the arguments as part of the command id ("mont:./data:./mnt", whose closest command is not `mount`), so only the
 * command words are matched; and without a terminal (scripts, CI) it prints nothing but "not a command", so the
 * suggestion is printed here as one line. Either way an unknown command is a usage error: exit 2.
 */
import type { Hook } from '@oclif/core'
import notFound from '@oclif/plugin-not-found'
import { closest } from 'fastest-levenshtein'
import { EXIT } from '../errors.js'

const hook: Hook<'command_not_found'> = async function (opts) {
  const words = opts.id.split(':')
  // A topic (`plugins`) takes a second word; anything that does not look like a command word is an argument.
  const word = (w: string | undefined): boolean => w !== undefined && /^[a-z][a-z0-9-]*$/i.test(w)
  const depth = opts.config.findTopic(words[0]) !== undefined && word(words[1]) ? 2 : 1
  const id = words.slice(0, depth).join(':')
  const argv = [...words.slice(depth), ...(opts.argv ?? [])]
  const sep = opts.config.topicSeparator
  if (process.stdin.isTTY === true) {
    try {
      return await notFound.call(this, { ...opts, id, argv })
    } catch (err) {
      const oclif = (err as { oclif?: { exit?: number } }).oclif
      if (oclif?.exit === 127) oclif.exit = EXIT.usage
      throw err
    }
  }
  const visible = opts.config.commands.filter(c => c.hidden !== true).flatMap(c => [c.id, ...c.aliases])
  const suggestion = closest(id, visible).replaceAll(':', sep)
  process.stderr.write(`fsx: "${id.replaceAll(':', sep)}" is not an fsx command; did you mean "${suggestion}"? (see: ${opts.config.bin} help)\n`)
  this.exit(EXIT.usage)
}

export default hook
