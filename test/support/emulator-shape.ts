// Compile-time check (npm run build): standalone mode loads the emulator by a path tsc does not follow, so the
// shape it expects (src/standalone/cloud.ts) is checked against the emulator's real exports here.
import * as emulator from '../../emulator/index.js';
import type { EmulatorModule } from '../../src/standalone/cloud.js';

export const emulatorShape: EmulatorModule<ReturnType<typeof emulator.demoState>> = emulator;
