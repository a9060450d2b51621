/**
 * The DuckDB client's runtime values, loaded with require(): an ESM import of this CommonJS package
 * has Node scan its sources for export names first, which doubled the time every `kaudit` command
 * took to start (~0.2 s more). Type-only imports of '@duckdb/node-api' cost nothing and stay as they are.
 */
import { createRequire } from 'node:module';

export const { DuckDBInstance, DuckDBTypeId, StatementType } = createRequire(import.meta.url)(
  '@duckdb/node-api',
) as typeof import('@duckdb/node-api');
