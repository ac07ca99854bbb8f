;; Whether every float32 of an array is finite (platform/finite.ts), with 128-bit SIMD over four at a time: x − x is 0
;; for every finite x and NaN for ±Infinity and NaN, and NaN stays in a sum. Four sums of four lanes, so that the
;; additions do not wait on each other. The caller copies the array into this memory a block at a time.
(module
  (import "env" "memory" (memory 1))

  ;; 1 when the n float32 at byte offset p (n a multiple of 16) are all finite, else 0.
  (func (export "allFinite32") (param $p i32) (param $n i32) (result i32)
    (local $end i32) (local $x v128) (local $a v128) (local $b v128) (local $c v128) (local $d v128)
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $x (v128.load (local.get $p)))
        (local.set $a (f32x4.add (local.get $a) (f32x4.sub (local.get $x) (local.get $x))))
        (local.set $x (v128.load offset=16 (local.get $p)))
        (local.set $b (f32x4.add (local.get $b) (f32x4.sub (local.get $x) (local.get $x))))
        (local.set $x (v128.load offset=32 (local.get $p)))
        (local.set $c (f32x4.add (local.get $c) (f32x4.sub (local.get $x) (local.get $x))))
        (local.set $x (v128.load offset=48 (local.get $p)))
        (local.set $d (f32x4.add (local.get $d) (f32x4.sub (local.get $x) (local.get $x))))
        (local.set $p (i32.add (local.get $p) (i32.const 64)))
        (br $next)))
    ;; A lane is NaN (x ≠ x) exactly where some value it summed was not finite.
    (local.set $a (f32x4.add (f32x4.add (local.get $a) (local.get $b)) (f32x4.add (local.get $c) (local.get $d))))
    (i32.eqz (v128.any_true (f32x4.ne (local.get $a) (local.get $a)))))
)
