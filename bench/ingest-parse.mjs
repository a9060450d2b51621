// Baseline (a): a plain Node pass that splits lines from Buffers and JSON.parses each one.
import { createReadStream } from 'node:fs';

const [file] = process.argv.slice(2);
const started = performance.now();
let lines = 0;
let rest = Buffer.alloc(0);
for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
  const buf = rest.length ? Buffer.concat([rest, chunk]) : chunk;
  let start = 0;
  for (let nl = buf.indexOf(10); nl >= 0; nl = buf.indexOf(10, start)) {
    if (nl > start) {
      JSON.parse(buf.toString('utf8', start, nl));
      lines++;
    }
    start = nl + 1;
  }
  rest = buf.subarray(start);
}
console.log(JSON.stringify({ lines, seconds: (performance.now() - started) / 1000 }));
