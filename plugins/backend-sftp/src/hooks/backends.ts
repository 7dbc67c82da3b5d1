// Scaffold: registers nothing until the backend definition exists.
export default async function (): Promise<void> {}
