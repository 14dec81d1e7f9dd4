// Which request bodies the API parses: `application/json`, with parameters allowed (most
// clients send `; charset=utf-8`), and a charset, if named, of UTF-8 only: JSON is UTF-8
// (RFC 8259 §8.1), so a body declared as anything else would be decoded wrongly. Every other
// type, `+json` and `json-patch+json` included, and any header that is not a well-formed
// media type (RFC 9110 §8.3.1) is refused with 415 before the body is read.

/** Longer than any real Content-Type; the parse below stays cheap on hostile headers. */
const MAX_HEADER = 256;
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const QUOTED = '"(?:[\\t \\x21\\x23-\\x5b\\x5d-\\x7e]|\\\\[\\t \\x21-\\x7e])*"';
const MEDIA_TYPE = new RegExp(`^(${TOKEN})/(${TOKEN})$`);
const PARAMETER = new RegExp(`^(${TOKEN})=(${TOKEN}|${QUOTED})$`);

/** True when a body with this Content-Type header is JSON we parse. Never throws. */
export function isJsonContentType(header: string | undefined): boolean {
  if (typeof header !== 'string' || header.length > MAX_HEADER) return false;
  const [type, ...params] = header.split(';');
  const media = MEDIA_TYPE.exec(type!.trim());
  if (!media || media[1]!.toLowerCase() !== 'application' || media[2]!.toLowerCase() !== 'json') return false;
  let charset: string | undefined;
  for (const raw of params) {
    if (raw.trim() === '') continue; // RFC 9110 §5.6.6 allows empty parameters ("a/b;")
    const p = PARAMETER.exec(raw.trim());
    if (!p) return false;
    if (p[1]!.toLowerCase() !== 'charset') continue;
    if (charset !== undefined) return false; // two charsets: ambiguous, so refused
    charset = unquote(p[2]!).toLowerCase();
  }
  return charset === undefined || charset === 'utf-8' || charset === 'utf8';
}

function unquote(value: string): string {
  return value.startsWith('"') ? value.slice(1, -1).replace(/\\(.)/g, '$1') : value;
}
