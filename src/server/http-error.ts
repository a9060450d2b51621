import { UserError } from '../model/errors.js';

/** Every error the API answers with: `{error: {code, message, hint?}}`. */
export interface ErrorBody {
  error: { code: string; message: string; hint?: string };
}

export function errorJson(status: number, code: string, message: string, hint?: string): Response {
  const body: ErrorBody = { error: { code, message } };
  if (hint !== undefined && hint !== '') body.error.hint = hint;
  return new Response(`${JSON.stringify(body)}\n`, {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8' },
  });
}

/** A UserError (bad parameter, bad policy...) is the client's: 400; anything else is ours: 500. */
export function errorResponse(err: unknown): Response {
  if (err instanceof UserError) {
    const status = err.code.endsWith('_NOT_FOUND') ? 404 : 400;
    return errorJson(status, err.code, err.message, err.hint);
  }
  const message = err instanceof Error ? err.message : String(err);
  return errorJson(500, 'KAUDIT_INTERNAL', message);
}
