// RFC 6901 JSON Pointers: the one parser for every pointer a policy names (predictions, redaction, drift, mirror rewrites).

/** Parses a JSON Pointer into reference tokens ("" is the whole document: no tokens). */
export function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((token) => token.replace(/~1/g, '/').replace(/~0/g, '~'));
}
