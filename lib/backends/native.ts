// Placeholder until the native addon loader lands: reports the native backend as not built.
import type { Kernels } from './kernels.js';
export function loadNativeKernels(): Kernels | null {
  throw new Error('native addon not built yet');
}
