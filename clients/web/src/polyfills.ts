/**
 * rsocket-js 1.0.0-alpha reads the Node `Buffer` global: give the browser one (npm `buffer`).
 * Imported first by main.tsx, before any rsocket module is evaluated.
 */
import { Buffer } from "buffer";

const scope = globalThis as unknown as { Buffer?: typeof Buffer };
if (scope.Buffer === undefined) scope.Buffer = Buffer;
