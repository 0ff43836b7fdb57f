import { describe, expect, it } from 'vitest';
import { readCappedBody } from '../../src/http/read-body.js';

/** A body that yields the given chunks (strings are UTF-8 encoded), and reports how far it was read. */
function chunks(...parts: (string | Uint8Array)[]): AsyncIterable<Uint8Array> & { consumed: () => number } {
  let consumed = 0;
  async function* generate(): AsyncGenerator<Uint8Array> {
    for (const part of parts) {
      consumed += 1;
      yield typeof part === 'string' ? Buffer.from(part, 'utf8') : part;
    }
  }
  return Object.assign(generate(), { consumed: () => consumed });
}

describe('readCappedBody', () => {
  it('parses complete JSON sent in several chunks when the content type says JSON', async () => {
    const body = await readCappedBody(chunks('{"id":', '7,"tags"', ':["a","b"]}'), 1_024, 'application/json; charset=utf-8');
    expect(body).toEqual({ value: { id: 7, tags: ['a', 'b'] }, bytes: 25, truncated: false });
  });

  it('parses JSON for +json content types', async () => {
    const body = await readCappedBody(chunks('{"title":"x"}'), 1_024, 'application/problem+json');
    expect(body.value).toEqual({ title: 'x' });
  });

  it('keeps JSON as text when the content type does not say JSON', async () => {
    expect((await readCappedBody(chunks('{"id":7}'), 1_024, 'text/plain')).value).toBe('{"id":7}');
    expect((await readCappedBody(chunks('{"id":7}'), 1_024, undefined)).value).toBe('{"id":7}');
  });

  it('keeps the first maxBytes, counts every byte, and reads the body to its end', async () => {
    const source = chunks('0123456789', 'abcdefghij', 'KLMNOPQRST', 'uvwxyz');
    const body = await readCappedBody(source, 15, 'text/plain');
    expect(body).toEqual({ value: '0123456789abcde', bytes: 36, truncated: true });
    expect(source.consumed()).toBe(4);
  });

  it('keeps a cut JSON body as text rather than parsing it', async () => {
    const body = await readCappedBody(chunks('{"items":[1,2,3,4,5,6,7,8,9]}'), 10, 'application/json');
    expect(body).toEqual({ value: '{"items":[', bytes: 29, truncated: true });
  });

  it('is not truncated when the body is exactly maxBytes', async () => {
    const body = await readCappedBody(chunks('[1,', '2]', new Uint8Array(0)), 5, 'application/json');
    expect(body).toEqual({ value: [1, 2], bytes: 5, truncated: false });
  });

  it('keeps nothing but still counts with maxBytes 0', async () => {
    const body = await readCappedBody(chunks('abc', 'def'), 0, 'text/plain');
    expect(body).toEqual({ value: '', bytes: 6, truncated: true });
  });

  it('keeps invalid JSON with a JSON content type as text', async () => {
    const body = await readCappedBody(chunks('{nope'), 1_024, 'application/json');
    expect(body).toEqual({ value: '{nope', bytes: 5, truncated: false });
  });

  it('gives no value for an empty body', async () => {
    expect(await readCappedBody(chunks(), 1_024, 'application/json')).toEqual({ value: undefined, bytes: 0, truncated: false });
    expect(await readCappedBody(chunks(new Uint8Array(0)), 1_024, 'text/plain')).toEqual({
      value: undefined,
      bytes: 0,
      truncated: false,
    });
  });

  it('does not throw when a multi-byte character is split across chunks or cut by maxBytes', async () => {
    const euro = Buffer.from('€', 'utf8'); // 3 bytes: e2 82 ac
    expect(euro.byteLength).toBe(3);
    // Split across chunks, not cut: decoded whole.
    const split = await readCappedBody(
      chunks(Buffer.from('a'), euro.subarray(0, 2), euro.subarray(2), Buffer.from('b')),
      1_024,
      'text/plain',
    );
    expect(split).toEqual({ value: 'a€b', bytes: 5, truncated: false });
    // Cut in the middle of the character: the partial character becomes a replacement character.
    const cut = await readCappedBody(chunks('a€b'), 3, 'text/plain');
    expect(cut.truncated).toBe(true);
    expect(cut.bytes).toBe(5);
    expect(cut.value).toBe('a\uFFFD');
  });

  it('parses JSON whose multi-byte text spans chunks', async () => {
    const bytes = Buffer.from('{"name":"Zoë €"}', 'utf8');
    const body = await readCappedBody(chunks(bytes.subarray(0, 11), bytes.subarray(11, 14), bytes.subarray(14)), 1_024, 'application/json');
    expect(body).toEqual({ value: { name: 'Zoë €' }, bytes: bytes.byteLength, truncated: false });
  });
});
