/**
 * The fenced code blocks of a Markdown file and the marker before each: an HTML comment `<!-- test: ... -->`
 * on the line just above the opening fence. Markers (README.md, "Development", says the same):
 * - `run` or `run session=NAME`: a shell block the docs test runs (blocks of one session share a shell);
 * - `excerpt PATH`: a verbatim excerpt of PATH (a line `// ...` stands for lines left out);
 * - `config-reference`: the configuration reference, checked against the config schema.
 * A block without a marker is an illustration: read, never run.
 */
export interface DocBlock {
  lang: string;
  /** The marker's words after `test:`, or undefined for an illustration. */
  marker: string | undefined;
  text: string;
  /** 1-based line of the opening fence, for messages. */
  line: number;
}

export function docBlocks(markdown: string): DocBlock[] {
  const lines = markdown.split('\n');
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]!);
    if (open === null) continue;
    const end = lines.findIndex((l, j) => j > i && l.startsWith('```'));
    if (end === -1) throw new Error(`unclosed code block at line ${i + 1}`);
    const marker = /^<!--\s*test:\s*(.+?)\s*-->\s*$/.exec(lines[i - 1] ?? '')?.[1];
    blocks.push({ lang: open[1]!, marker, text: lines.slice(i + 1, end).join('\n'), line: i + 1 });
    i = end;
  }
  return blocks;
}

/** Whether `excerpt` is `source` with some lines left out, each left-out run marked by a `// ...` line. */
export function isVerbatimExcerpt(excerpt: string, source: string): boolean {
  let from = 0;
  for (const chunk of excerpt.split(/^[ \t]*\/\/ \.\.\.[ \t]*$/m)) {
    const text = chunk.replace(/^\n+|\n+$/g, '');
    if (text === '') continue;
    const at = source.indexOf(text, from);
    if (at === -1) return false;
    from = at + text.length;
  }
  return true;
}
