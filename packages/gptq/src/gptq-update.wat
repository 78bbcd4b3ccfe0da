;; The hot inner loop of the GPTQ column step (LC gptq_block_update, eager path), in WebAssembly SIMD:
;; for rows r in [r0, r1): W1[r, j] -= fl(e[r] * Hinv[i, j]) for j in (i, bw).
;; f32x4.mul then f32x4.sub round separately (no fused multiply-add in wasm SIMD), so every element gets exactly
;; torch's two f32 roundings. Offsets are byte offsets into the imported memory; panel, err are rows × bw f32,
;; h is the bw × bw diagonal block of the upper Cholesky factor of H^-1.
;; Compiled by scripts/build-wasm.mjs into gptq-update-wasm.ts.
(module
  (import "env" "mem" (memory 1))
  (func (export "update")
    (param $p i32) (param $e i32) (param $h i32) (param $bw i32) (param $i i32) (param $r0 i32) (param $r1 i32)
    (local $r i32) (local $row i32) (local $ev f32) (local $evv v128) (local $j i32) (local $hrow i32) (local $a i32)
    (local.set $hrow (i32.add (local.get $h) (i32.shl (i32.mul (local.get $i) (local.get $bw)) (i32.const 2))))
    (local.set $r (local.get $r0))
    (block $done
      (loop $rows
        (br_if $done (i32.ge_u (local.get $r) (local.get $r1)))
        ;; byte offset of row r inside a rows × bw array
        (local.set $row (i32.shl (i32.mul (local.get $r) (local.get $bw)) (i32.const 2)))
        (local.set $ev (f32.load (i32.add (i32.add (local.get $e) (local.get $row)) (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $evv (f32x4.splat (local.get $ev)))
        (local.set $j (i32.add (local.get $i) (i32.const 1)))
        (block $vdone
          (loop $vec
            (br_if $vdone (i32.gt_u (i32.add (local.get $j) (i32.const 4)) (local.get $bw)))
            (local.set $a (i32.add (i32.add (local.get $p) (local.get $row)) (i32.shl (local.get $j) (i32.const 2))))
            (v128.store (local.get $a)
              (f32x4.sub
                (v128.load (local.get $a))
                (f32x4.mul (local.get $evv) (v128.load (i32.add (local.get $hrow) (i32.shl (local.get $j) (i32.const 2)))))))
            (local.set $j (i32.add (local.get $j) (i32.const 4)))
            (br $vec)))
        (block $sdone
          (loop $scalar
            (br_if $sdone (i32.ge_u (local.get $j) (local.get $bw)))
            (local.set $a (i32.add (i32.add (local.get $p) (local.get $row)) (i32.shl (local.get $j) (i32.const 2))))
            (f32.store (local.get $a)
              (f32.sub
                (f32.load (local.get $a))
                (f32.mul (local.get $ev) (f32.load (i32.add (local.get $hrow) (i32.shl (local.get $j) (i32.const 2)))))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $scalar)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rows)))))
