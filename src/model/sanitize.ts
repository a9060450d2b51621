/**
 * Text from events (user agents, names, messages) is attacker-controlled: printed raw, an ESC or CSI
 * sequence can move the cursor, rewrite lines or set the window title. Every C0 control (but tab),
 * DEL and C1 control (U+0080-U+009F, which include the 8-bit CSI U+009B) is shown escaped instead,
 * so the text stays readable and the terminal is never driven by it.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROLS = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g;

export function sanitize(text: string): string {
  return text.replace(CONTROLS, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
}
