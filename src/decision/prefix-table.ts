// Longest-prefix lookup in a radix tree: the cost of a match grows with the path's length, not with the number of routes.
//
// The rule is the one the router always had: a route matches when the raw request target (path and query, as sent)
// starts with its pathPrefix, and the longest such prefix wins. Prefixes are plain strings, not path segments, so
// `/v1/models/iris` matches KServe's `/v1/models/iris:predict` (and, as before, `/v1/models/iris2/...` unless a longer
// prefix claims it). A tree over characters keeps that rule exactly; a map keyed by whole segments would not.

interface Node<T> {
  /** The characters on the edge into this node (empty only at the root). */
  label: string;
  value: T | undefined;
  /** Children keyed by the first character code of their label; null while there are none. */
  children: Map<number, Node<T>> | null;
}

function node<T>(label: string, value: T | undefined = undefined): Node<T> {
  return { label, value, children: null };
}

/** Length of the common start of `a` (from `from`) and `b`. */
function commonLength(a: string, from: number, b: string): number {
  const max = Math.min(a.length - from, b.length);
  let i = 0;
  while (i < max && a.charCodeAt(from + i) === b.charCodeAt(i)) i++;
  return i;
}

/** An immutable-after-build map from string prefixes to values, answering "the value of the longest prefix of s". */
export class PrefixTable<T> {
  readonly #root: Node<T> = node('');
  #size = 0;

  /** Builds a table; when a prefix is given twice the first value is kept (the policy loader refuses duplicates). */
  static of<T>(entries: Iterable<readonly [string, T]>): PrefixTable<T> {
    const table = new PrefixTable<T>();
    for (const [prefix, value] of entries) table.#insert(prefix, value);
    return table;
  }

  get size(): number {
    return this.#size;
  }

  #insert(prefix: string, value: T): void {
    let current = this.#root;
    let pos = 0;
    for (;;) {
      if (pos === prefix.length) {
        if (current.value === undefined) {
          current.value = value;
          this.#size++;
        }
        return;
      }
      const code = prefix.charCodeAt(pos);
      const child = current.children?.get(code);
      if (child === undefined) {
        (current.children ??= new Map()).set(code, node(prefix.slice(pos), value));
        this.#size++;
        return;
      }
      const common = commonLength(prefix, pos, child.label);
      if (common < child.label.length) {
        // Split the edge: a new inner node holds the shared start, the old child keeps the rest of its label.
        const inner = node<T>(child.label.slice(0, common));
        child.label = child.label.slice(common);
        inner.children = new Map([[child.label.charCodeAt(0), child]]);
        current.children!.set(code, inner);
        current = inner;
      } else {
        current = child;
      }
      pos += common;
    }
  }

  /** The value of the longest prefix of `text` in the table, or undefined when none is a prefix. */
  match(text: string): T | undefined {
    let current = this.#root;
    let best = current.value;
    let pos = 0;
    for (;;) {
      const children = current.children;
      if (children === null || pos >= text.length) return best;
      const child = children.get(text.charCodeAt(pos));
      if (child === undefined || !text.startsWith(child.label, pos)) return best;
      pos += child.label.length;
      current = child;
      if (current.value !== undefined) best = current.value;
    }
  }
}
