// tsc copies only .ts output; the Lua scripts are read at run time from beside the compiled store.
import { cpSync } from 'node:fs';
cpSync('lib/store/lua', 'dist/lib/store/lua', { recursive: true });
cpSync('lib/store/presence-lua', 'dist/lib/store/presence-lua', { recursive: true });
