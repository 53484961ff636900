/**
 * How deep a YAML text nests, estimated from its characters before any parser sees it. The yaml
 * library recurses per level: an upload's 540-byte manifest of ~100,000 nested `[` kept the
 * process busy 5.9 s until the stack overflowed (its CST parser alone takes 2 s over 100 kB of
 * `[`), and 200 kB of `- - - …` ran it out of memory. So a manifest is refused by this scan first,
 * with the words the check after the parse uses (`nests deeper than 32 levels`).
 *
 * The estimate never exceeds the depth the parser would find in valid YAML, bar one case too
 * contrived to matter (a multi-line plain scalar whose continuation lines read like ever deeper
 * `- ` items), and undercounts some (a sequence at its parent key's indentation counts once):
 * what it lets through is checked again after the parse. It counts
 * - flow collections: `[` and `{` opening a node (anywhere in flow context; in block context where
 *   a value starts), outside quoted scalars and comments;
 * - block collections: the indentation columns of the open block levels, a level per column at
 *   which a line starts an item (`- `, `? `) or a key (`key:`), and per compact indicator
 *   (`- - - x` is three sequences). Block scalars (`|`, `>`) and continuation lines are skipped.
 */

export function yamlNestsDeeperThan(text: string, max: number): boolean {
  const state: ScanState = { stack: [], flow: 0, quote: '', blockScalar: -1, openValue: true, flowValueStart: true };
  for (const line of text.split(/\r?\n/)) {
    if (lineDepth(state, line) > max) return true;
  }
  return false;
}

interface ScanState {
  /** Columns of the open block collections, increasing. */
  stack: number[];
  /** Open flow collections. */
  flow: number;
  /** The quote of a quoted scalar open at the end of the last line, or ''. */
  quote: string;
  /** The indentation of the line that opened a block scalar being skipped, or -1. */
  blockScalar: number;
  /** Whether the last structural line left a value to come on the next lines (`key:`, `-`). */
  openValue: boolean;
  /** Within a flow collection: whether the last line ended where a node may start (after `,`). */
  flowValueStart: boolean;
}

/** The estimated depth at the deepest point of `line`, updating `state`. */
function lineDepth(state: ScanState, line: string): number {
  const indent = line.length - line.trimStart().length;
  const content = line.slice(indent);
  if (state.blockScalar >= 0) {
    if (content === '' || indent > state.blockScalar) return 0;
    state.blockScalar = -1;
  }
  // Inside a quoted scalar or a flow collection, line breaks and indentation mean nothing.
  if (state.quote !== '' || state.flow > 0) return state.stack.length + scanFlow(state, line, 0, false);
  if (content === '' || content.startsWith('#')) return 0;
  if (indent === 0 && /^(?:---|\.\.\.)(?:\s|$)/.test(content)) {
    state.stack = [];
    state.openValue = true;
    return scanFlow(state, line, 3, true);
  }
  const top = state.stack.at(-1) ?? -1;
  // Deeper than the open level and no value left open: a scalar's continuation line.
  if (indent > top && !state.openValue) return 0;
  while ((state.stack.at(-1) ?? -1) > indent) state.stack.pop();
  // Each compact indicator (`- - x`, `? - x`) opens a collection at its column, anchors and tags
  // between them or not (`- &a - - x` nests as deep: 20,000 of them reached the parser).
  let column = indent;
  let indicators = 0;
  for (;;) {
    if ((line[column] === '-' || line[column] === '?') && isSpace(line[column + 1])) {
      push(state.stack, column);
      indicators++;
      column++;
    } else if (line[column] === '&' || line[column] === '!') {
      const end = propertyEnd(line, column);
      if (!isSpace(line[end])) break;
      column = end;
    } else break;
    while (line[column] === ' ' || line[column] === '\t') column++;
  }
  const afterKey = keyEnd(line, column);
  if (afterKey >= 0) push(state.stack, column);
  if (indicators === 0 && afterKey < 0) {
    // A scalar (or a flow collection) standing alone: the root's, or a value opened above.
    state.openValue = endsNoScalar(line.slice(column));
    return state.stack.length + scanFlow(state, line, column, true);
  }
  // What follows the last indicator: nothing, anchors and tags (the value is on the next lines),
  // a block scalar's header (its lines are skipped), or a value on this line.
  const value = line.slice(afterKey >= 0 ? afterKey : column);
  const tokens = valueTokens(value);
  if (tokens.length === 1 && /^[|>][-+0-9]*$/.test(tokens[0] as string)) {
    state.blockScalar = indent;
    state.openValue = false;
    return state.stack.length;
  }
  state.openValue = tokens.length === 0 || endsNoScalar(value);
  return state.stack.length + scanFlow(state, line, column, true);
}

/** The tokens of a value, without its comment, anchors and tags. */
function valueTokens(value: string): string[] {
  const text = value.replace(/(?:^|\s)#.*$/, '').trim();
  return text === '' ? [] : text.split(/\s+/).filter((token) => token[0] !== '&' && token[0] !== '!');
}

/**
 * Whether a value is quoted or a flow collection: then no plain scalar goes on over the next
 * lines, and a deeper line after it is not its continuation but (invalid) structure, counted:
 * skipped, `a: "b"` then 30,000 `[` on the next line kept the parser busy 1.7 s.
 */
function endsNoScalar(value: string): boolean {
  return /^["'[{]/.test(valueTokens(value)[0] ?? '');
}

/**
 * The index just past the `:` of a mapping key that starts at `from`, or -1 when the line does
 * not start with one. Plain keys end at the first `: ` (or `:` ending the line), quoted ones at
 * their closing quote; a key starting with an indicator (`&`, `*`, `!`, `[` …) is not looked into.
 */
function keyEnd(line: string, from: number): number {
  const first = line[from];
  let end: number;
  if (first === '"' || first === "'") {
    end = closingQuote(line, from);
    if (end < 0) return -1;
    while (line[end] === ' ' || line[end] === '\t') end++;
    return line[end] === ':' && isSpace(line[end + 1]) ? end + 1 : -1;
  }
  if (first === undefined || '#&*!|>%@`[]{},'.includes(first)) return -1;
  const colon = /:(?:[ \t]|$)/.exec(line.slice(from));
  if (!colon) return -1;
  end = from + colon.index;
  const comment = line.indexOf(' #', from);
  return comment >= 0 && comment < end ? -1 : end + 1;
}

/** Past the quote that closes the quoted scalar opening at `from` on this line, or -1. */
function closingQuote(line: string, from: number): number {
  const quote = line[from];
  for (let i = from + 1; i < line.length; i++) {
    if (quote === '"' && line[i] === '\\') i++;
    else if (line[i] === quote) {
      if (quote === "'" && line[i + 1] === "'") i++;
      else return i + 1;
    }
  }
  return -1;
}

/** A space, a tab or the end of the line. */
function isSpace(char: string | undefined): boolean {
  return char === undefined || char === ' ' || char === '\t';
}

function push(stack: number[], column: number): void {
  if ((stack.at(-1) ?? -1) < column) stack.push(column);
}

/**
 * Scans `line` from `from` for flow collections and quoted scalars, carrying both across lines;
 * returns the deepest flow nesting reached on it. `block`: the line starts in block context.
 * A quote opens a quoted scalar, and in block context a `[` or `{` a collection, only where a node
 * starts (after `: `, `- `, `? `; in flow context also after `[`, `{`, `,`), past any anchors and
 * tags before it: elsewhere they are text of a plain scalar (`title: don't [x]`, `[a'b]`). Taking
 * one for text where the parser opens a node hid whatever nesting followed (`extra: &a [[[…`,
 * `[a'b, [[[…`: 100,000 levels reached the parser); where in doubt a bracket is counted.
 */
function scanFlow(state: ScanState, line: string, from: number, block: boolean): number {
  let deepest = state.flow;
  // Within a flow collection a line may continue a plain scalar (`[a` then `'b, [[…` below it).
  let valueStart = state.flow > 0 && !block ? state.flowValueStart : true;
  // Past a quoted scalar only an indicator or a comment is valid: a bracket there is counted.
  let afterQuote = false;
  for (let i = from; i < line.length; i++) {
    const char = line[i] as string;
    if (state.quote !== '') {
      if (state.quote === '"' && char === '\\') i++;
      else if (char === state.quote) {
        if (state.quote === "'" && line[i + 1] === "'") i++;
        else {
          state.quote = '';
          valueStart = false;
          afterQuote = true;
        }
      }
      continue;
    }
    if (char === ' ' || char === '\t') continue;
    if (char === '#' && (i === 0 || line[i - 1] === ' ' || line[i - 1] === '\t')) break;
    if (valueStart && (char === '&' || char === '!')) {
      // An anchor or a tag: the node it belongs to starts after it.
      i = propertyEnd(line, i) - 1;
      continue;
    }
    if ((char === '"' || char === "'") && valueStart) state.quote = char;
    else if ((char === '[' || char === '{') && (valueStart || afterQuote || state.flow > 0)) {
      state.flow++;
      deepest = Math.max(deepest, state.flow);
    } else if ((char === ']' || char === '}') && state.flow > 0) state.flow--;
    valueStart = startsValue(line, i, state.flow > 0);
  }
  state.flowValueStart = valueStart;
  return deepest;
}

/**
 * Whether a node may start after `line[i]`. In block context after `: `, `- `, `? `; in flow
 * context after `[`, `{`, `,`, `? `, and after a `:` that is an indicator: followed by a space or
 * a flow indicator, or after a quoted key or a collection (`{"a":'b'}`); `a:'b` is one plain scalar.
 */
function startsValue(line: string, i: number, flow: boolean): boolean {
  const char = line[i] as string;
  const next = line[i + 1];
  if (!flow) return /[:?-]/.test(char) && isSpace(next);
  if ('[{,'.includes(char)) return true;
  if (char === '?') return isSpace(next);
  if (char !== ':') return false;
  if (isSpace(next) || (next !== undefined && ',[]{}'.includes(next))) return true;
  let before = i - 1;
  while (line[before] === ' ' || line[before] === '\t') before--;
  return before >= 0 && `"']}`.includes(line[before] as string);
}

/**
 * Past the anchor (`&a`) or tag (`!t`, `!!str`, `!<tag:x>`) starting at `from`: at the next space
 * or flow indicator (neither is part of an anchor or a shorthand tag), or past a verbatim tag's `>`.
 */
function propertyEnd(line: string, from: number): number {
  if (line[from] === '!' && line[from + 1] === '<') {
    const close = line.indexOf('>', from);
    return close < 0 ? line.length : close + 1;
  }
  let end = from + 1;
  while (end < line.length && !' \t,[]{}'.includes(line[end] as string)) end++;
  return end;
}
