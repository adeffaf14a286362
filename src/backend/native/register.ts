// Placeholder until the native addon lands: reports that it is not built.
export function registerNativeBackend(): string | null {
  return 'the native addon is not built';
}
