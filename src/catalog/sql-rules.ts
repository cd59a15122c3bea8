// The CockroachDB compatibility rules (DESIGN.md), as a checker for SQL text.
// CockroachDB cannot run on our machines, so instead of testing on it we keep the
// catalog inside SQL that both CockroachDB and PostgreSQL accept, and check every
// statement blobfs sends against this list (test/catalog/sql-audit.test.ts records
// them through the driver's debug hook while exercising every catalog method).
//
// The checker tokenizes just enough to be honest: comments, string literals,
// quoted identifiers and dollar-quoted bodies are removed before matching, so
// `offset_bytes` or a string 'OFFSET' is not a violation, and a $$ body is one.

export interface SqlRule {
  name: string
  why: string
  pattern: RegExp
}

/** Rules for every statement. */
export const sqlRules: readonly SqlRule[] = [
  {
    name: 'no SERIAL',
    why: 'sequential keys make every insert hit the same CockroachDB range; use UUID keys (gen_random_uuid or writer-chosen)',
    pattern: /\b(SMALL|BIG)?SERIAL[248]?\b/,
  },
  {
    name: 'no sequences',
    why: 'same hot-spot as SERIAL, and sequences are slow in a distributed database',
    pattern: /\bCREATE\s+(TEMP(ORARY)?\s+)?SEQUENCE\b|\bNEXTVAL\s*\(/,
  },
  {
    name: 'no triggers',
    why: 'CockroachDB has no (or very recent, limited) triggers; logic stays in TypeScript where it is tested',
    pattern: /\bCREATE\s+(OR\s+REPLACE\s+)?(CONSTRAINT\s+)?TRIGGER\b/,
  },
  {
    name: 'no stored procedures',
    why: 'functions and procedures (PL/pgSQL, DO blocks) are not portable to CockroachDB versions we support',
    pattern: /\bCREATE\s+(OR\s+REPLACE\s+)?(FUNCTION|PROCEDURE)\b|^\s*(CALL|DO)\b|\bLANGUAGE\s+PLPGSQL\b|\$DOLLAR_BODY\$/,
  },
  {
    name: 'no LISTEN/NOTIFY',
    why: 'CockroachDB has no LISTEN/NOTIFY; workers poll their queues',
    pattern: /^\s*(LISTEN|UNLISTEN|NOTIFY)\b|\bPG_NOTIFY\s*\(/,
  },
  {
    name: 'no advisory locks',
    why: 'CockroachDB has no advisory locks; use idempotent statements and row locks (SELECT ... FOR UPDATE)',
    pattern: /\bPG_(TRY_)?ADVISORY_\w+/,
  },
  {
    name: 'no OFFSET',
    why: 'OFFSET reads and throws away every skipped row; pages seek from the last key instead',
    pattern: /\bOFFSET\b/,
  },
  {
    name: 'no LOCK TABLE',
    why: 'CockroachDB has no table locks; contention is handled by SERIALIZABLE and retries',
    pattern: /^\s*LOCK\b/,
  },
  {
    name: 'SERIALIZABLE only',
    why: 'every explicit transaction runs SERIALIZABLE (CockroachDB\'s default; weaker levels behave differently across engines); the one write outside a transaction is Db.alone\'s single-row insert',
    pattern: /\bISOLATION\s+LEVEL\s+(READ\s+(UN)?COMMITTED|REPEATABLE\s+READ)\b|^\s*(BEGIN|START\s+TRANSACTION)\b(?![\s\S]*\bSERIALIZABLE\b)/,
  },
  {
    name: 'no PostgreSQL system columns',
    why: 'ctid, xmin and xmax do not exist in CockroachDB',
    pattern: /\b(CTID|XMIN|XMAX)\b/,
  },
  {
    name: 'no temporary tables',
    why: 'temporary tables are experimental in CockroachDB',
    pattern: /\bCREATE\s+(GLOBAL\s+|LOCAL\s+)?TEMP(ORARY)?\s+TABLE\b/,
  },
]

/** Extra rules for migrations: the schema only grows. */
export const migrationRules: readonly SqlRule[] = [
  {
    name: 'migrations are not destructive',
    why: 'a newer blobfs must never lose data an older one wrote; schema changes only add',
    pattern: /\bDROP\b|\bTRUNCATE\b|^\s*DELETE\b|^\s*UPDATE\b|\bRENAME\b|\bALTER\s+COLUMN\b[\s\S]*\bTYPE\b/,
  },
  {
    name: 'migrations are idempotent',
    why: 'several processes may run the same migration at once; each statement must be safe to repeat',
    pattern: /^\s*CREATE\s+(UNIQUE\s+)?(TABLE|INDEX)\s+(?!IF\s+NOT\s+EXISTS\b)|\bADD\s+COLUMN\s+(?!IF\s+NOT\s+EXISTS\b)/,
  },
]

/**
 * The statement with comments, literals and quoted identifiers blanked out,
 * upper-cased. Dollar-quoted bodies become the marker $DOLLAR_BODY$.
 */
export function normalizeSql(statement: string): string {
  let out = ''
  let i = 0
  const s = statement
  while (i < s.length) {
    const c = s[i]!
    const next = s[i + 1]
    if (c === '-' && next === '-') {
      while (i < s.length && s[i] !== '\n') i++
      out += ' '
    } else if (c === '/' && next === '*') {
      const end = s.indexOf('*/', i + 2)
      i = end < 0 ? s.length : end + 2
      out += ' '
    } else if (c === "'") {
      i++
      while (i < s.length) {
        if (s[i] === "'" && s[i + 1] === "'") i += 2
        else if (s[i] === "'") break
        else i++
      }
      i++
      out += "''"
    } else if (c === '"') {
      const end = s.indexOf('"', i + 1)
      i = end < 0 ? s.length : end + 1
      out += 'IDENT'
    } else if (c === '$' && /[A-Za-z_$]/.test(next ?? '') && /^\$[A-Za-z_]*\$/.test(s.slice(i))) {
      const tag = /^\$[A-Za-z_]*\$/.exec(s.slice(i))![0]
      const end = s.indexOf(tag, i + tag.length)
      i = end < 0 ? s.length : end + tag.length
      out += '$DOLLAR_BODY$'
    } else {
      out += c
      i++
    }
  }
  return out.toUpperCase()
}

/** Names of the rules `statement` breaks (empty when it is fine). */
export function sqlViolations(statement: string, rules: readonly SqlRule[] = sqlRules): string[] {
  const normalized = normalizeSql(statement)
  return rules.filter((rule) => rule.pattern.test(normalized)).map((rule) => rule.name)
}
