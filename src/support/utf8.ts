import { isUtf8 } from 'node:buffer';

/** Why a line's bytes are not UTF-8 (naming the first bad byte, counted from 1), or undefined. */
export function utf8Problem(bytes: Uint8Array): string | undefined {
  const at = invalidUtf8At(bytes);
  if (at === undefined) return undefined;
  return `not valid UTF-8 at byte ${at} of the line; sluice reads UTF-8 only (convert the file, e.g. iconv -f WINDOWS-1252 -t UTF-8)`;
}

/** Where bytes stop being UTF-8: the first bad byte, counted from 1; undefined when they are UTF-8. */
export function invalidUtf8At(bytes: Uint8Array): number | undefined {
  return isUtf8(bytes) ? undefined : firstInvalidByte(bytes) + 1;
}

/** The offset of the first byte that starts no valid UTF-8 sequence (RFC 3629: no overlongs, surrogates or values past U+10FFFF). */
function firstInvalidByte(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i]!;
    let size = 0;
    let low = 0x80;
    let high = 0xbf;
    if (lead < 0x80) size = 1;
    else if (lead >= 0xc2 && lead <= 0xdf) size = 2;
    else if (lead >= 0xe0 && lead <= 0xef) {
      size = 3;
      if (lead === 0xe0) low = 0xa0;
      if (lead === 0xed) high = 0x9f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      size = 4;
      if (lead === 0xf0) low = 0x90;
      if (lead === 0xf4) high = 0x8f;
    } else return i;
    for (let k = 1; k < size; k += 1) {
      const next = bytes[i + k];
      const [min, max] = k === 1 ? [low, high] : [0x80, 0xbf];
      if (next === undefined || next < min || next > max) return i;
    }
    i += size;
  }
  return i;
}
