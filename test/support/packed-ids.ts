/** Test helper: user ids laid out as a request carries them (UTF-8 back to back, with the end of each). */

const utf8 = new TextEncoder();

/** The ids packed as a request chunk: bytes and ends. */
export function pack(ids: readonly string[]): { bytes: Uint8Array; ends: Uint32Array } {
  const encoded = ids.map((id) => utf8.encode(id));
  const bytes = new Uint8Array(encoded.reduce((sum, e) => sum + e.length, 0));
  const ends = new Uint32Array(ids.length);
  let at = 0;
  encoded.forEach((e, i) => {
    bytes.set(e, at);
    at += e.length;
    ends[i] = at;
  });
  return { bytes, ends };
}
