declare module 'fast-crc32c' {
  const crc32c: { calculate(data: Buffer | string, initial?: number): number }
  export default crc32c
}
