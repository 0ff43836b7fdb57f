// The dashboard script's building blocks: elements made from attributes and textContent (so nothing
// the server sends is ever parsed as markup), the one table layout the views share, and number and
// time formatting. No state, no requests.

const numbers = new Intl.NumberFormat('en-US');
export const num = (value) => numbers.format(value);
export const byId = (id) => document.getElementById(id);
export const sum = (values) => values.reduce((a, b) => a + b, 0);
export const clock = (date) => date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });

/** An element: attributes (on* are listeners, text is textContent), then children. */
export function h(tag, attributes, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'text') element.textContent = String(value);
    else if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

export function svg(tag, attributes) {
  const element = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  return element;
}

/** A table under a row of column titles; `body` is its tbody. */
export function table(titles, body) {
  return h(
    'table',
    {},
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        titles.map((title) => h('th', { scope: 'col', text: title })),
      ),
    ),
    body,
  );
}
