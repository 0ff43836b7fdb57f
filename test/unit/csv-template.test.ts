import { describe, expect, it } from 'vitest';
import { cellValue, compileRowTemplate, type RowTemplate } from '../../src/operation/row-template.js';
import { COLUMN_SYNTAX, placeholdersOf, renderTemplate } from '../../src/operation/template.js';

function compile(template: unknown, header: string[]): RowTemplate {
  const compiled = compileRowTemplate(template, header);
  if (!compiled.ok) throw new Error(compiled.message);
  return compiled.template;
}

function renderOk(template: RowTemplate, cells: string[]): Record<string, unknown> {
  const rendered = template.render(cells);
  if (!rendered.ok) throw new Error(rendered.problems.join('; '));
  return rendered.operation;
}

describe('cellValue: a cell that is a whole value', () => {
  it.each([
    ['42', 42],
    ['-1.5', -1.5],
    ['0', 0],
    ['0.25', 0.25],
    ['19.90', 19.9],
    ['9007199254740991', 9_007_199_254_740_991],
    ['true', true],
    ['false', false],
    ['TRUE', true],
    ['FALSE', false],
  ])('%j → %j', (cell, value) => {
    expect(cellValue(cell)).toBe(value);
  });

  it.each([
    ['01234', 'a zip code keeps its leading zero'],
    ['007', 'leading zeros'],
    ['1e5', 'no exponents'],
    ['+1', 'no plus sign'],
    ['1,000', 'no thousands separators'],
    ['1.', 'no trailing dot'],
    ['.5', 'no leading dot'],
    [' 42', 'cells are not trimmed'],
    ['9007199254740993', 'an integer a JSON number cannot hold exactly'],
    ['12345678901234567890', 'a long account number'],
    ['0.1234567890123456', 'more than 15 significant digits'],
    ['True', 'only true/false and TRUE/FALSE are booleans'],
    ['null', 'there is no null'],
    ['NaN', 'not a number'],
  ])('%j stays text (%s)', (cell) => {
    expect(cellValue(cell)).toBe(cell);
  });

  // Property-based counterexample: below the smallest normal double a decimal loses digits, and past 5e-324 all of them.
  it('a decimal too small for a double to hold exactly stays text (1e-324 was 0)', () => {
    for (const cell of [`0.${'0'.repeat(323)}1`, `-0.${'0'.repeat(309)}123456789012345`]) expect(cellValue(cell)).toBe(cell);
    expect(cellValue(`0.${'0'.repeat(300)}5`)).toBe(5e-301);
  });

  it('an empty cell is no value', () => {
    expect(cellValue('')).toBeUndefined();
  });
});

describe('column placeholders', () => {
  it('name columns with spaces, dashes, dots and non-ASCII letters, and leave other braces alone', () => {
    const names = [
      ...placeholdersOf(
        { a: '{{First Name}} {{ e-mail }}', b: ['{{addr.zip}}', '{{Prénom:string}}'], c: '{{#each items}}{{/each}} {{}}' },
        COLUMN_SYNTAX,
      ),
    ];
    expect(names).toEqual([
      { name: 'First Name', path: ['a'] },
      { name: 'e-mail', path: ['a'] },
      { name: 'addr.zip', path: ['b', 0] },
      { name: 'Prénom:string', path: ['b', 1] },
    ]);
  });

  it('leave pagination templates as they were: {{item.path}} with its JSON type', () => {
    expect(renderTemplate({ id: '{{item.id}}', url: '/u/{{item.id}}', tags: ['{{item.missing}}'] }, { item: { id: 7 } })).toEqual({
      id: 7,
      url: '/u/7',
      tags: [null],
    });
  });
});

describe('compileRowTemplate + render', () => {
  const header = ['id', 'name', 'zip', 'active', 'price', 'note'];
  const template = {
    method: 'POST',
    url: '/contacts/{{id}}',
    idempotencyKey: 'upsert-{{id}}',
    query: { p: '{{price}}' },
    json: {
      id: '{{id}}',
      name: '{{name}}',
      zip: '{{zip}}',
      active: '{{active}}',
      price: '{{price}}',
      note: '{{note}}',
      label: '{{name}} ({{zip}})',
      tags: ['{{note}}', 'x'],
    },
  };

  it('types whole-value cells, writes cells inside text as they are, and copies the row into meta', () => {
    const row = compile(template, header);
    expect(renderOk(row, ['17', 'Ada "A", Lovelace', '01234', 'true', '19.90', 'line 1\nline 2'])).toEqual({
      method: 'POST',
      url: '/contacts/17',
      idempotencyKey: 'upsert-17',
      query: { p: 19.9 },
      json: {
        id: 17,
        name: 'Ada "A", Lovelace',
        zip: '01234',
        active: true,
        price: 19.9,
        note: 'line 1\nline 2',
        label: 'Ada "A", Lovelace (01234)',
        tags: ['line 1\nline 2', 'x'],
      },
      meta: { id: '17', name: 'Ada "A", Lovelace', zip: '01234', active: 'true', price: '19.90', note: 'line 1\nline 2' },
    });
  });

  it('inside text a number keeps its spelling: 19.90 stays 19.90 in a URL', () => {
    const row = compile({ method: 'GET', url: '/prices/{{price}}' }, header);
    expect(renderOk(row, ['1', 'a', '1', 'true', '19.90', ''])['url']).toBe('/prices/19.90');
  });

  it('an empty cell: left out as a whole value, empty inside text, null as an array element; meta keeps it as ""', () => {
    const row = compile(template, header);
    const operation = renderOk(row, ['5', '', '', 'false', '', '']);
    expect(operation['json']).toEqual({ id: 5, active: false, label: ' ()', tags: [null, 'x'] });
    expect(operation['query']).toEqual({});
    expect(operation['meta']).toEqual({ id: '5', name: '', zip: '', active: 'false', price: '', note: '' });
  });

  it('a template with its own meta keeps it (rendered), and gets no row copy', () => {
    const row = compile({ method: 'GET', url: '/x', meta: { row: '{{id}}', source: 'crm.csv' } }, header);
    expect(renderOk(row, ['3', 'a', '1', 'true', '1', ''])['meta']).toEqual({ row: 3, source: 'crm.csv' });
  });

  it('declared types: {{zip:string}} stays text, {{x:number}} and {{x:boolean}} must fit, naming the field and the column', () => {
    const row = compile(
      {
        method: 'POST',
        url: '/c/{{id:number}}',
        json: { zip: '{{zip:string}}', age: '{{name:number}}', active: '{{active:boolean}}', n: '{{price:number}}' },
      },
      header,
    );
    expect(renderOk(row, ['1', '42', '99999', 'FALSE', '1e3', ''])).toMatchObject({
      url: '/c/1',
      json: { zip: '99999', age: 42, active: false, n: 1000 },
    });
    expect(row.render(['x', 'forty', '99999', 'yes', '', ''])).toEqual({
      ok: false,
      problems: [
        'url: expected number (column id: "x")',
        'json.age: expected number (column name: "forty")',
        'json.active: expected boolean (column active: "yes")',
      ],
    });
  });

  it('explain names the column and cell behind a field, for validation messages', () => {
    const row = compile(template, header);
    const cells = ['17', 'x'.repeat(50), '01234', 'true', '1', ''];
    expect(row.explain('json.zip', cells)).toBe(' (column zip: "01234")');
    expect(row.explain('json.label', cells)).toBe(` (column name: "${'x'.repeat(40)}…", column zip: "01234")`);
    expect(row.explain('method', cells)).toBe('');
  });

  // Property-based counterexample: assigning to out["__proto__"] set the prototype and lost the field.
  it('keeps a "__proto__" key of the template and a column named __proto__ in meta', () => {
    const template = compile(JSON.parse('{"method":"POST","url":"/x","json":{"__proto__":{"v":"{{id}}"},"k":"{{id}}"}}'), [
      'id',
      '__proto__',
    ]);
    expect(JSON.stringify(renderOk(template, ['7', 'p']))).toBe(
      '{"method":"POST","url":"/x","json":{"__proto__":{"v":7},"k":7},"meta":{"id":"7","__proto__":"p"}}',
    );
    expect(JSON.stringify(renderTemplate(JSON.parse('{"json":{"__proto__":{"v":"{{item.id}}"}}}'), { item: { id: 3 } }))).toBe(
      '{"json":{"__proto__":{"v":3}}}',
    );
  });

  it('trims header names; a column without a name is ignored', () => {
    const row = compile({ method: 'GET', url: '/{{id}}' }, [' id ', '', 'name']);
    expect(row.columns).toEqual(['id', '', 'name']);
    expect(renderOk(row, ['1', 'ignored', 'n'])['meta']).toEqual({ id: '1', name: 'n' });
  });

  it.each([
    [
      { method: 'GET', url: '/{{id}}/{{emial}}', json: { a: '{{Name}}' } },
      header,
      '{{emial}}, {{Name}} name no columns of the CSV header; its columns: id, name, zip, active, price, note',
    ],
    [{ method: 'GET', url: '/{{idd}}' }, ['id', ''], '{{idd}} names no column of the CSV header; its columns: id'],
    [{ method: 'GET', url: '/{{id:text}}' }, header, '{{id:text}}: unknown type "text"; use string, number, boolean'],
    [{ method: 'GET', url: '/{{id}}' }, ['id', 'name', 'id'], 'the header names column "id" twice'],
    [[{ method: 'GET', url: '/' }], header, 'the template must be an operation: a JSON object'],
  ])('refuses %j with header %j', (bad, columns, message) => {
    expect(compileRowTemplate(bad, columns)).toEqual({ ok: false, message });
  });
});
