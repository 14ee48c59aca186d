export default async function globalTeardown(): Promise<void> {
  // Each test file drops its own database; the template stays for inspection.
}
