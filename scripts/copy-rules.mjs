// The built-in detection rules are YAML read at run time: copy them beside the compiled engine.
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const from = 'src/detect/rules/builtin';
const to = 'dist/detect/rules/builtin';
mkdirSync(to, { recursive: true });
let n = 0;
for (const name of readdirSync(from)) {
  if (!name.endsWith('.yaml')) continue;
  copyFileSync(join(from, name), join(to, name));
  n++;
}
console.log(`copy-rules: ${n} built-in rules`);
