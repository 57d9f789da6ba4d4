// .dockerignore rules with Docker's own semantics (moby/patternmatcher): Go filepath.Match globs plus `**`,
// `!` exceptions where the last matching rule wins, and a rule that matches a directory excluding everything
// under it. Pure.

interface Rule {
  re: RegExp;
  exclusion: boolean;
  /** the cleaned pattern, for people */
  pattern: string;
}

export class DockerIgnore {
  private constructor(private readonly rules: Rule[]) {}

  static parse(text: string): DockerIgnore {
    const rules: Rule[] = [];
    for (const raw of text.split(/\r?\n/)) {
      if (raw.startsWith('#')) continue;
      let line = raw.trim();
      if (line === '') continue;
      const exclusion = line.startsWith('!');
      if (exclusion) line = line.slice(1).trim();
      const pattern = cleanPath(line);
      if (pattern === '') continue;
      rules.push({ re: compile(pattern), exclusion, pattern });
    }
    return new DockerIgnore(rules);
  }

  /** Whether any rule is an exception (then an excluded directory may still hold included files). */
  get hasExceptions(): boolean {
    return this.rules.some((r) => r.exclusion);
  }

  /** Whether `path` (relative to the context, `/`-separated) is left out of the build context. */
  excludes(path: string): boolean {
    const file = cleanPath(path);
    const parents = file.split('/').slice(0, -1);
    let excluded = false;
    for (const rule of this.rules) {
      let match = rule.re.test(file);
      for (let i = 1; !match && i <= parents.length; i++) match = rule.re.test(parents.slice(0, i).join('/'));
      if (match) excluded = !rule.exclusion;
    }
    return excluded;
  }
}

/** filepath.Clean, then without a leading `/` (patterns are relative to the context root). */
function cleanPath(p: string): string {
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return out.join('/');
}

/** The regular expression moby builds for a pattern. */
function compile(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') i++;
        // `**` at the end takes everything; elsewhere any number of directories, zero included
        re += i + 1 >= pattern.length ? '.*' : '(.*/)?';
      } else {
        re += '[^/]*';
      }
    } else if (ch === '?') {
      re += '[^/]';
    } else if (ch === '\\' && i + 1 < pattern.length) {
      re += escape(pattern[++i]!);
    } else if (ch === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) {
        re += '\\[';
      } else {
        const body = pattern.slice(i + 1, end).replace(/^\^/, '!');
        re += `[${body.startsWith('!') ? '^' + body.slice(1) : body}]`;
        i = end;
      }
    } else {
      re += escape(ch);
    }
  }
  return new RegExp(re + '$');
}

function escape(ch: string): string {
  return /[.+^${}()|[\]\\*?]/.test(ch) ? `\\${ch}` : ch;
}
