/**
 * Just enough TrueType for the figure pipeline:
 * - advance widths (cmap format 4 + hmtx), because headless vega has no canvas to measure text and otherwise guesses
 *   0.8 em per character, which leaves wide gaps around labels, legends and titles;
 * - glyph subsetting, because resvg re-reads a font file from disk for every glyph it draws: with the full 750 kB
 *   DejaVu Sans that is most of the rasterisation time, with a subset of the few hundred glyphs in use it is noise.
 */
import { readFileSync } from "node:fs";

/** Tables a renderer needs to find, outline and place glyphs (hinting, layout and PostScript tables are dropped). */
const KEPT_TABLES = ["OS/2", "cmap", "glyf", "head", "hhea", "hmtx", "loca", "maxp", "name"];

/** Composite glyph component flags. */
const ARGS_ARE_WORDS = 0x1;
const HAS_SCALE = 0x8;
const MORE_COMPONENTS = 0x20;
const HAS_XY_SCALE = 0x40;
const HAS_2X2 = 0x80;

export class TrueType {
  private readonly font: Buffer;
  private readonly tables = new Map<string, { offset: number; length: number }>();
  private readonly unitsPerEm: number;
  private readonly numHMetrics: number;
  private readonly cmap4: number;
  private readonly advanceCache = new Map<number, number>();

  constructor(readonly file: string) {
    this.font = readFileSync(file);
    const f = this.font;
    for (let i = 0, n = f.readUInt16BE(4); i < n; i++) {
      const rec = 12 + 16 * i;
      this.tables.set(f.toString("latin1", rec, rec + 4), { offset: f.readUInt32BE(rec + 8), length: f.readUInt32BE(rec + 12) });
    }
    this.unitsPerEm = f.readUInt16BE(this.table("head") + 18);
    this.numHMetrics = f.readUInt16BE(this.table("hhea") + 34);
    const cmap = this.table("cmap");
    let sub = -1;
    for (let i = 0, n = f.readUInt16BE(cmap + 2); i < n; i++) {
      const rec = cmap + 4 + 8 * i;
      const at = cmap + f.readUInt32BE(rec + 4);
      if (f.readUInt16BE(rec) === 3 && f.readUInt16BE(rec + 2) === 1 && f.readUInt16BE(at) === 4) sub = at;
    }
    if (sub < 0) throw new Error(`${file}: no Unicode BMP cmap (platform 3, encoding 1, format 4)`);
    this.cmap4 = sub;
  }

  private table(tag: string): number {
    const t = this.tables.get(tag);
    if (!t) throw new Error(`${this.file}: no ${tag} table`);
    return t.offset;
  }

  /** Glyph id of a code point (0, the missing glyph, when the font lacks it). */
  glyph(c: number): number {
    const f = this.font;
    const segments = f.readUInt16BE(this.cmap4 + 6) / 2;
    const ends = this.cmap4 + 14;
    const starts = ends + 2 * segments + 2;
    const deltas = starts + 2 * segments;
    const rangeOffsets = deltas + 2 * segments;
    if (c > 0xffff) return 0;
    for (let i = 0; i < segments; i++) {
      if (f.readUInt16BE(ends + 2 * i) < c) continue;
      const start = f.readUInt16BE(starts + 2 * i);
      if (start > c) return 0;
      const delta = f.readUInt16BE(deltas + 2 * i);
      const ro = f.readUInt16BE(rangeOffsets + 2 * i);
      if (ro === 0) return (c + delta) & 0xffff;
      const g = f.readUInt16BE(rangeOffsets + 2 * i + ro + 2 * (c - start));
      return g === 0 ? 0 : (g + delta) & 0xffff;
    }
    return 0;
  }

  /** Advance width of a string in em (no kerning: the subsets drop the kerning tables, so resvg draws it the same). */
  width(text: string): number {
    let w = 0;
    for (const ch of text) {
      const c = ch.codePointAt(0) ?? 0;
      let a = this.advanceCache.get(c);
      if (a === undefined) {
        a = this.font.readUInt16BE(this.table("hmtx") + 4 * Math.min(this.glyph(c), this.numHMetrics - 1)) / this.unitsPerEm;
        this.advanceCache.set(c, a);
      }
      w += a;
    }
    return w;
  }

  /**
   * A valid TrueType file that draws `chars` like this font: glyph ids are kept (so cmap and hmtx stay as they are),
   * all other glyphs are emptied.
   */
  subset(chars: Iterable<string>): Buffer {
    const f = this.font;
    const numGlyphs = f.readUInt16BE(this.table("maxp") + 4);
    const longLoca = f.readInt16BE(this.table("head") + 50) === 1;
    const loca = this.table("loca");
    const glyf = this.table("glyf");
    const at = (g: number): number => (longLoca ? f.readUInt32BE(loca + 4 * g) : 2 * f.readUInt16BE(loca + 2 * g));
    const keep = new Set<number>();
    const visit = (g: number): void => {
      if (keep.has(g)) return;
      keep.add(g);
      const start = glyf + at(g);
      if (at(g + 1) === at(g) || f.readInt16BE(start) >= 0) return;
      // Composite glyph: keep its components too.
      for (let p = start + 10, flags = MORE_COMPONENTS; flags & MORE_COMPONENTS; ) {
        flags = f.readUInt16BE(p);
        visit(f.readUInt16BE(p + 2));
        p += 4 + (flags & ARGS_ARE_WORDS ? 4 : 2) + (flags & HAS_SCALE ? 2 : flags & HAS_XY_SCALE ? 4 : flags & HAS_2X2 ? 8 : 0);
      }
    };
    visit(0);
    for (const ch of chars) visit(this.glyph(ch.codePointAt(0) ?? 0));
    const newLoca = Buffer.alloc(4 * (numGlyphs + 1));
    const pieces: Buffer[] = [];
    let size = 0;
    for (let g = 0; g < numGlyphs; g++) {
      newLoca.writeUInt32BE(size, 4 * g);
      if (!keep.has(g)) continue;
      const piece = f.subarray(glyf + at(g), glyf + at(g + 1));
      const padded = Buffer.alloc(piece.length + ((4 - (piece.length % 4)) % 4));
      piece.copy(padded);
      pieces.push(padded);
      size += padded.length;
    }
    newLoca.writeUInt32BE(size, 4 * numGlyphs);
    const head = Buffer.from(f.subarray(this.table("head"), this.table("head") + 54));
    head.writeInt16BE(1, 50); // loca is rewritten in the long format
    const data = new Map<string, Buffer>(KEPT_TABLES.map((tag) => [tag, this.raw(tag)]));
    data.set("glyf", Buffer.concat(pieces));
    data.set("loca", newLoca);
    data.set("head", head);
    return assembleFont(f.readUInt32BE(0), data);
  }

  private raw(tag: string): Buffer {
    const t = this.tables.get(tag);
    if (!t) throw new Error(`${this.file}: no ${tag} table`);
    return this.font.subarray(t.offset, t.offset + t.length);
  }
}

/** sfnt container around the given tables (checksums left zero: renderers do not verify them). */
function assembleFont(version: number, tables: Map<string, Buffer>): Buffer {
  const entries = [...tables.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
  const n = entries.length;
  const entrySelector = Math.floor(Math.log2(n));
  const searchRange = 16 * 2 ** entrySelector;
  const header = Buffer.alloc(12 + 16 * n);
  header.writeUInt32BE(version, 0);
  header.writeUInt16BE(n, 4);
  header.writeUInt16BE(searchRange, 6);
  header.writeUInt16BE(entrySelector, 8);
  header.writeUInt16BE(16 * n - searchRange, 10);
  const body: Buffer[] = [];
  let offset = header.length;
  entries.forEach(([tag, t], i) => {
    header.write(tag, 12 + 16 * i, "latin1");
    header.writeUInt32BE(offset, 12 + 16 * i + 8);
    header.writeUInt32BE(t.length, 12 + 16 * i + 12);
    const padded = Buffer.alloc(t.length + ((4 - (t.length % 4)) % 4));
    t.copy(padded);
    body.push(padded);
    offset += padded.length;
  });
  return Buffer.concat([header, ...body]);
}
