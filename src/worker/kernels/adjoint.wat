;; Hot loop of the sparse-cpu adjoint, in WebAssembly with 128-bit SIMD (two float64 lanes):
;;   ds[i·B + b] += Σ_{e ∈ row i} W[e] · delta[cellType[i]·N·B + post[e]·B + b]   for every neuron i and trial b.
;; Each lane sums over the edges of its row in edge order, exactly as the scalar JavaScript fallback does, so both
;; give bit-identical results. Trials are processed eight (four vectors) at a time so that each synapse's weight
;; and target index are loaded once per eight trials. All pointers are byte offsets into the module's memory.
(module
  (import "env" "memory" (memory 1))
  (func (export "rowDots")
    (param $rowPtr i32) (param $post i32) (param $w i32) (param $delta i32) (param $ds i32) (param $cellType i32)
    (param $n i32) (param $trials i32)
    (local $i i32) (local $e i32) (local $end i32) (local $b i32) (local $dBase i32) (local $row i32)
    (local $p i32) (local $wv v128) (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $s f64) (local $stride i32)
    ;; bytes between consecutive postsynaptic neurons in delta: trials × 8
    (local.set $stride (i32.shl (local.get $trials) (i32.const 3)))
    (block $doneRows
      (loop $rows
        (br_if $doneRows (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $dBase (i32.add (local.get $delta)
          (i32.mul (i32.load (i32.add (local.get $cellType) (i32.shl (local.get $i) (i32.const 2))))
                   (i32.mul (local.get $n) (local.get $stride)))))
        (local.set $row (i32.add (local.get $ds) (i32.mul (local.get $i) (local.get $stride))))
        (local.set $end (i32.load (i32.add (local.get $rowPtr) (i32.shl (i32.add (local.get $i) (i32.const 1)) (i32.const 2)))))
        (local.set $b (i32.const 0))
        ;; blocks of eight trials
        (block $done8
          (loop $blocks8
            (br_if $done8 (i32.gt_u (i32.add (local.get $b) (i32.const 8)) (local.get $trials)))
            (local.set $a0 (v128.const f64x2 0 0)) (local.set $a1 (v128.const f64x2 0 0))
            (local.set $a2 (v128.const f64x2 0 0)) (local.set $a3 (v128.const f64x2 0 0))
            (local.set $e (i32.load (i32.add (local.get $rowPtr) (i32.shl (local.get $i) (i32.const 2)))))
            (block $doneE8
              (loop $edges8
                (br_if $doneE8 (i32.ge_u (local.get $e) (local.get $end)))
                (local.set $wv (f64x2.splat (f64.promote_f32 (f32.load (i32.add (local.get $w) (i32.shl (local.get $e) (i32.const 2)))))))
                (local.set $p (i32.add (local.get $dBase)
                  (i32.add (i32.mul (i32.load (i32.add (local.get $post) (i32.shl (local.get $e) (i32.const 2)))) (local.get $stride))
                           (i32.shl (local.get $b) (i32.const 3)))))
                (local.set $a0 (f64x2.add (local.get $a0) (f64x2.mul (local.get $wv) (v128.load offset=0 (local.get $p)))))
                (local.set $a1 (f64x2.add (local.get $a1) (f64x2.mul (local.get $wv) (v128.load offset=16 (local.get $p)))))
                (local.set $a2 (f64x2.add (local.get $a2) (f64x2.mul (local.get $wv) (v128.load offset=32 (local.get $p)))))
                (local.set $a3 (f64x2.add (local.get $a3) (f64x2.mul (local.get $wv) (v128.load offset=48 (local.get $p)))))
                (local.set $e (i32.add (local.get $e) (i32.const 1)))
                (br $edges8)))
            (local.set $p (i32.add (local.get $row) (i32.shl (local.get $b) (i32.const 3))))
            (v128.store offset=0 (local.get $p) (f64x2.add (v128.load offset=0 (local.get $p)) (local.get $a0)))
            (v128.store offset=16 (local.get $p) (f64x2.add (v128.load offset=16 (local.get $p)) (local.get $a1)))
            (v128.store offset=32 (local.get $p) (f64x2.add (v128.load offset=32 (local.get $p)) (local.get $a2)))
            (v128.store offset=48 (local.get $p) (f64x2.add (v128.load offset=48 (local.get $p)) (local.get $a3)))
            (local.set $b (i32.add (local.get $b) (i32.const 8)))
            (br $blocks8)))
        ;; pairs of trials
        (block $done2
          (loop $blocks2
            (br_if $done2 (i32.gt_u (i32.add (local.get $b) (i32.const 2)) (local.get $trials)))
            (local.set $a0 (v128.const f64x2 0 0))
            (local.set $e (i32.load (i32.add (local.get $rowPtr) (i32.shl (local.get $i) (i32.const 2)))))
            (block $doneE2
              (loop $edges2
                (br_if $doneE2 (i32.ge_u (local.get $e) (local.get $end)))
                (local.set $p (i32.add (local.get $dBase)
                  (i32.add (i32.mul (i32.load (i32.add (local.get $post) (i32.shl (local.get $e) (i32.const 2)))) (local.get $stride))
                           (i32.shl (local.get $b) (i32.const 3)))))
                (local.set $a0 (f64x2.add (local.get $a0)
                  (f64x2.mul (f64x2.splat (f64.promote_f32 (f32.load (i32.add (local.get $w) (i32.shl (local.get $e) (i32.const 2))))))
                             (v128.load (local.get $p)))))
                (local.set $e (i32.add (local.get $e) (i32.const 1)))
                (br $edges2)))
            (local.set $p (i32.add (local.get $row) (i32.shl (local.get $b) (i32.const 3))))
            (v128.store (local.get $p) (f64x2.add (v128.load (local.get $p)) (local.get $a0)))
            (local.set $b (i32.add (local.get $b) (i32.const 2)))
            (br $blocks2)))
        ;; a last odd trial
        (if (i32.lt_u (local.get $b) (local.get $trials))
          (then
            (local.set $s (f64.const 0))
            (local.set $e (i32.load (i32.add (local.get $rowPtr) (i32.shl (local.get $i) (i32.const 2)))))
            (block $doneE1
              (loop $edges1
                (br_if $doneE1 (i32.ge_u (local.get $e) (local.get $end)))
                (local.set $s (f64.add (local.get $s)
                  (f64.mul (f64.promote_f32 (f32.load (i32.add (local.get $w) (i32.shl (local.get $e) (i32.const 2)))))
                           (f64.load (i32.add (local.get $dBase)
                             (i32.add (i32.mul (i32.load (i32.add (local.get $post) (i32.shl (local.get $e) (i32.const 2)))) (local.get $stride))
                                      (i32.shl (local.get $b) (i32.const 3))))))))
                (local.set $e (i32.add (local.get $e) (i32.const 1)))
                (br $edges1)))
            (local.set $p (i32.add (local.get $row) (i32.shl (local.get $b) (i32.const 3))))
            (f64.store (local.get $p) (f64.add (f64.load (local.get $p)) (local.get $s)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows)))))
