// Baseline (b): DuckDB imports the log by itself (read_json_objects -> the same column extraction
// -> the same table, raw JSON kept), in its own process so its memory is measured alone.
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import {
  CREATE_MACROS,
  CREATE_META,
  createTable,
  createView,
  eventsSelect,
  insertList,
  sqlString,
} from '../dist/store/duckdb/schema.js';

const [file, dir] = process.argv.slice(2);
rmSync(dir, { recursive: true, force: true });
const { mkdirSync } = await import('node:fs');
mkdirSync(dir, { recursive: true });
const dbFile = join(dir, 'native.duckdb');
const started = performance.now();
const instance = await DuckDBInstance.create(dbFile, { storage_compatibility_version: 'latest' });
const conn = await instance.connect();
await conn.run(CREATE_META);
await conn.run(createTable('audit_events'));
await conn.run(createView());
await conn.run(CREATE_MACROS);
const source = `SELECT 0 AS i, json::VARCHAR AS j FROM read_json_objects(${sqlString(file)}, format = 'newline_delimited', maximum_object_size = 1073741824)`;
const r = await conn.run(
  `INSERT INTO audit_events SELECT ${insertList(Date.now() * 1000)} FROM (${eventsSelect(source, 'default')}) WHERE reject IS NULL`,
);
await conn.run('CHECKPOINT');
conn.closeSync();
instance.closeSync();
const seconds = (performance.now() - started) / 1000;
console.log(JSON.stringify({ rows: r.rowsChanged, seconds, dbBytes: statSync(dbFile).size }));
