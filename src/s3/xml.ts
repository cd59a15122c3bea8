// S3 speaks XML in both directions. Both go through fast-xml-parser (STYLE.md item 12:
// a well-kept library beats hand-written XML); this file fixes the options once so
// every operation parses the same way: text stays text ("0123" is a key, not a
// number), whitespace is kept (keys may start with a space), numeric character
// references are decoded, and DOCTYPE (entity expansion) is refused.
import { XMLBuilder, XMLParser, XMLValidator } from 'fast-xml-parser'
import { BlobfsError } from '../errors.ts'

export const s3Namespace = 'http://s3.amazonaws.com/doc/2006-03-01/'

const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@_', suppressEmptyNode: false, format: false })

/** Elements that may repeat in the request bodies we accept; always parsed as arrays. */
const repeated = new Set(['Object', 'Part', 'Grant', 'Tag'])

const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  trimValues: false,
  processEntities: true,
  htmlEntities: true,
  removeNSPrefix: true,
  isArray: (name) => repeated.has(name),
})

export type XmlValue = string | number | boolean | Date | null | undefined | XmlObject | XmlValue[]
export interface XmlObject {
  [name: string]: XmlValue
}

/** Builds `<?xml ...?><Root xmlns="...">...</Root>`; arrays repeat their element. */
export function buildXml(root: string, body: XmlObject, namespace: string | null = s3Namespace): string {
  const element: XmlObject = namespace ? { '@_xmlns': namespace, ...body } : body
  return '<?xml version="1.0" encoding="UTF-8"?>' + builder.build({ [root]: normalize(element) })
}

function normalize(value: XmlValue): XmlValue {
  if (value instanceof Date) return value.toISOString()
  if (Array.isArray(value)) return value.map(normalize)
  if (value !== null && typeof value === 'object') {
    const out: XmlObject = {}
    for (const [name, child] of Object.entries(value)) if (child !== undefined) out[name] = normalize(child)
    return out
  }
  return value
}

/**
 * Parses a request body whose root element must be `root`; returns the root's
 * children. Anything not well-formed, with a DOCTYPE, or with another root is
 * MalformedXML.
 */
export function parseXml(body: Buffer | string, root: string): Record<string, unknown> {
  const text = typeof body === 'string' ? body : body.toString('utf8')
  if (text.trim() === '' || /<!DOCTYPE/i.test(text)) throw new BlobfsError('MalformedXML', `expected a <${root}> document`)
  const valid = XMLValidator.validate(text)
  if (valid !== true) throw new BlobfsError('MalformedXML', `not well-formed XML: ${valid.err.msg} (line ${valid.err.line})`)
  const document = parser.parse(text) as Record<string, unknown>
  const element = document[root]
  const roots = Object.keys(document).filter((name) => name !== '?xml')
  if (roots.length !== 1 || element === undefined) throw new BlobfsError('MalformedXML', `expected the root element <${root}>, got <${roots.join('>, <')}>`)
  if (element === '' || typeof element === 'string') return {}
  return element as Record<string, unknown>
}

/** A child element's text, or undefined when absent; an element where text was expected is MalformedXML. */
export function xmlText(parent: Record<string, unknown>, name: string): string | undefined {
  const value = parent[name]
  if (value === undefined) return undefined
  if (Array.isArray(value)) throw new BlobfsError('MalformedXML', `<${name}> appears more than once`)
  if (typeof value === 'object' && value !== null) {
    const keys = Object.keys(value)
    if (keys.length === 0) return ''
    throw new BlobfsError('MalformedXML', `<${name}> must hold text`)
  }
  return String(value)
}

/** The repeated child elements `name` (objects), or [] when absent. */
export function xmlList(parent: Record<string, unknown>, name: string): Record<string, unknown>[] {
  const value = parent[name]
  if (value === undefined) return []
  const list = Array.isArray(value) ? value : [value]
  return list.map((item) => {
    if (item === '' ) return {}
    if (typeof item !== 'object' || item === null) throw new BlobfsError('MalformedXML', `<${name}> must hold elements`)
    return item as Record<string, unknown>
  })
}
