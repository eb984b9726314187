// HPACK Huffman decoding (RFC 7541 Appendix B). The code is canonical, so the table is stored as
// the code length of each symbol (0..255, then EOS = 256); codes are rebuilt from the lengths.

/** Code lengths of symbols 0..256, one char each: "5".."9" = 5..9 bits, "A".."U" = 10..30 bits. */
const CODE_LENGTHS =
  "DNSSSSSSSOUSSUSSSSSSSSUSSSSSSSSS6AACD68BAA8B8666555666666678F6CAD67777777777777777777777878DJDE6F56565666577666" +
  "567655677777FBEDSKMKKMMMNMNNNNNONOOMNONNNNLMNMNNOMLKMMNNLNMMOLMNNLLMLNMNNKMMMNMMNQQKJMNMPQQQRRQOPJLQRRQROLLQQSR" +
  "RRKOKLMLLNMMPPOOQNQRQQRRRRRSRRRRRQU";

const EOS = 256;
const SYMBOLS = 257;
const NO_SYMBOL = 511;

/** Binary tree: children[2 * node + bit] = child node, or -(symbol + 1) for a leaf. Node 0 is the root. */
const children = new Int16Array(2 * SYMBOLS);
/** Per node: bits since the last symbol, and whether they are all ones (a valid end-of-string padding). */
const nodeDepth = new Uint8Array(SYMBOLS);
const nodeAllOnes = new Uint8Array(SYMBOLS);
/**
 * Nibble decoder: transitions[16 * node + nibble] = next node | symbol << 9 | failed << 18
 * (symbol NO_SYMBOL when none completes; failed when EOS appears). A nibble completes at most one
 * symbol: codes are at least 5 bits long.
 */
const transitions = new Int32Array(16 * SYMBOLS);

function buildTables(): void {
  const lengths: number[] = [];
  for (let s = 0; s < SYMBOLS; s++) {
    const c = CODE_LENGTHS.charCodeAt(s);
    lengths.push(c <= 57 ? c - 48 : c - 55);
  }
  const order = Array.from({ length: SYMBOLS }, (_, s) => s).sort(
    (a, b) => (lengths[a] as number) - (lengths[b] as number) || a - b,
  );
  let nodes = 1;
  let code = 0;
  let previous = lengths[order[0] as number] as number;
  order.forEach((symbol, i) => {
    const length = lengths[symbol] as number;
    if (i > 0) code = (code + 1) * 2 ** (length - previous);
    previous = length;
    let node = 0;
    for (let bit = length - 1; bit >= 0; bit--) {
      const b = Math.floor(code / 2 ** bit) % 2;
      const slot = 2 * node + b;
      if (bit === 0) {
        children[slot] = -(symbol + 1);
      } else {
        if (children[slot] === 0) {
          const child = nodes++;
          children[slot] = child;
          nodeDepth[child] = (nodeDepth[node] as number) + 1;
          nodeAllOnes[child] = node === 0 || nodeAllOnes[node] ? b : 0;
        }
        node = children[slot] as number;
      }
    }
  });
  nodeAllOnes[0] = 1;
  for (let node = 0; node < nodes; node++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let at = node;
      let symbol = NO_SYMBOL;
      let failed = 0;
      for (let bit = 3; bit >= 0; bit--) {
        const next = children[2 * at + ((nibble >> bit) & 1)] as number;
        if (next < 0) {
          if (-next - 1 === EOS) failed = 1;
          symbol = -next - 1;
          at = 0;
        } else at = next;
      }
      transitions[16 * node + nibble] = at | (symbol << 9) | (failed << 18);
    }
  }
}
buildTables();

/**
 * Decodes Huffman bytes src[start, end) into out from offset 0 (out must hold (end - start) * 8 / 5
 * bytes). Returns the decoded length, or -1 when the string is invalid (EOS inside, bad padding).
 */
export function huffmanDecode(src: Uint8Array, start: number, end: number, out: Uint8Array): number {
  let node = 0;
  let n = 0;
  for (let i = start; i < end; i++) {
    const byte = src[i] as number;
    for (let shift = 4; shift >= 0; shift -= 4) {
      const t = transitions[16 * node + ((byte >> shift) & 15)] as number;
      if (t & (1 << 18)) return -1;
      const symbol = (t >> 9) & 511;
      if (symbol !== NO_SYMBOL) out[n++] = symbol;
      node = t & 511;
    }
  }
  // what is left must be a prefix of EOS (all ones) shorter than a byte
  return (nodeDepth[node] as number) <= 7 && nodeAllOnes[node] ? n : -1;
}

/** Upper bound of the decoded size of `encodedLength` Huffman bytes (codes are ≥ 5 bits). */
export const huffmanMaxDecoded = (encodedLength: number): number => Math.ceil((encodedLength * 8) / 5);
