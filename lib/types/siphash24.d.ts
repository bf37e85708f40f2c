/** The part of siphash24's API lib/cursor.ts uses (the package ships no types). */
declare module 'siphash24' {
  /** SipHash-2-4 of `data` under a 16-byte key, written into `out` (8 bytes) and returned. */
  function siphash24(data: Uint8Array, key: Uint8Array, out?: Uint8Array, noAssert?: boolean): Uint8Array;
  export default siphash24;
}
