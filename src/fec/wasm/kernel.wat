;; Symbol operations of the iotupd RaptorQ codec (src/fec), WebAssembly SIMD128.
;; Build: node scripts/build-wasm.mjs  ->  src/fec/wasm/kernel.generated.ts
;;
;; Memory (imported, owned by one arena):
;;   [0, 8192)      GF(256) nibble tables: for coefficient c, bytes c*32 .. c*32+15 hold c*i and
;;                  c*32+16 .. c*32+31 hold c*(i<<4), i = 0..15 (written by wasm-kernel.ts)
;;   [8192, 8448)   source address list of a fused XOR chain (64 x i32)
;;   plan buffer    ops of four i32: opcode, dst slot, src slot, coefficient (see plan.ts)
;;   arena          symbol slots
;; GF(256) products use i8x16.swizzle as a 16-entry table lookup on each nibble; swizzle returns
;; 0 for indices >= 16, so both nibbles are masked to 0..15 first.
(module
  (import "env" "mem" (memory 1))

  (func $xor (export "xor") (param $dst i32) (param $src i32) (param $len i32)
    (local $i i32) (local $end i32)
    (local $d i32) (local $s i32)
    ;; 64 bytes per iteration, then 16, then single bytes.
    (local.set $end (i32.and (local.get $len) (i32.const -64)))
    (block $done64
      (loop $vec64
        (br_if $done64 (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $d (i32.add (local.get $dst) (local.get $i)))
        (local.set $s (i32.add (local.get $src) (local.get $i)))
        (v128.store (local.get $d) (v128.xor (v128.load (local.get $d)) (v128.load (local.get $s))))
        (v128.store offset=16 (local.get $d) (v128.xor (v128.load offset=16 (local.get $d)) (v128.load offset=16 (local.get $s))))
        (v128.store offset=32 (local.get $d) (v128.xor (v128.load offset=32 (local.get $d)) (v128.load offset=32 (local.get $s))))
        (v128.store offset=48 (local.get $d) (v128.xor (v128.load offset=48 (local.get $d)) (v128.load offset=48 (local.get $s))))
        (local.set $i (i32.add (local.get $i) (i32.const 64)))
        (br $vec64)))
    (local.set $end (i32.and (local.get $len) (i32.const -16)))
    (block $done
      (loop $vec
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (v128.store (i32.add (local.get $dst) (local.get $i))
          (v128.xor (v128.load (i32.add (local.get $dst) (local.get $i)))
                    (v128.load (i32.add (local.get $src) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $vec)))
    (block $done2
      (loop $byte
        (br_if $done2 (i32.ge_u (local.get $i) (local.get $len)))
        (i32.store8 (i32.add (local.get $dst) (local.get $i))
          (i32.xor (i32.load8_u (i32.add (local.get $dst) (local.get $i)))
                   (i32.load8_u (i32.add (local.get $src) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $byte))))

  ;; dst ^= c * src (c != 0)
  (func $muladd (export "muladd") (param $dst i32) (param $src i32) (param $c i32) (param $len i32)
    (local $i i32) (local $end i32) (local $lo v128) (local $hi v128) (local $x v128) (local $y v128) (local $m v128) (local $t i32) (local $b i32) (local $d i32)
    (local.set $t (i32.shl (local.get $c) (i32.const 5)))
    (local.set $lo (v128.load (local.get $t)))
    (local.set $hi (v128.load offset=16 (local.get $t)))
    (local.set $m (i8x16.splat (i32.const 15)))
    (local.set $end (i32.and (local.get $len) (i32.const -32)))
    (block $done32
      (loop $vec32
        (br_if $done32 (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $d (i32.add (local.get $dst) (local.get $i)))
        (local.set $x (v128.load (i32.add (local.get $src) (local.get $i))))
        (local.set $y (v128.load offset=16 (i32.add (local.get $src) (local.get $i))))
        (v128.store (local.get $d)
          (v128.xor (v128.load (local.get $d))
            (v128.xor
              (i8x16.swizzle (local.get $lo) (v128.and (local.get $x) (local.get $m)))
              (i8x16.swizzle (local.get $hi) (i8x16.shr_u (local.get $x) (i32.const 4))))))
        (v128.store offset=16 (local.get $d)
          (v128.xor (v128.load offset=16 (local.get $d))
            (v128.xor
              (i8x16.swizzle (local.get $lo) (v128.and (local.get $y) (local.get $m)))
              (i8x16.swizzle (local.get $hi) (i8x16.shr_u (local.get $y) (i32.const 4))))))
        (local.set $i (i32.add (local.get $i) (i32.const 32)))
        (br $vec32)))
    (local.set $end (i32.and (local.get $len) (i32.const -16)))
    (block $done
      (loop $vec
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $x (v128.load (i32.add (local.get $src) (local.get $i))))
        (v128.store (i32.add (local.get $dst) (local.get $i))
          (v128.xor (v128.load (i32.add (local.get $dst) (local.get $i)))
            (v128.xor
              (i8x16.swizzle (local.get $lo) (v128.and (local.get $x) (local.get $m)))
              (i8x16.swizzle (local.get $hi) (i8x16.shr_u (local.get $x) (i32.const 4))))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $vec)))
    (block $done2
      (loop $byte
        (br_if $done2 (i32.ge_u (local.get $i) (local.get $len)))
        (local.set $b (i32.load8_u (i32.add (local.get $src) (local.get $i))))
        (i32.store8 (i32.add (local.get $dst) (local.get $i))
          (i32.xor (i32.load8_u (i32.add (local.get $dst) (local.get $i)))
            (i32.xor (i32.load8_u (i32.add (local.get $t) (i32.and (local.get $b) (i32.const 15))))
                     (i32.load8_u offset=16 (i32.add (local.get $t) (i32.shr_u (local.get $b) (i32.const 4)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $byte))))

  ;; dst = c * dst
  (func $mul (export "mul") (param $dst i32) (param $c i32) (param $len i32)
    (local $i i32) (local $end i32) (local $lo v128) (local $hi v128) (local $x v128) (local $m v128) (local $t i32) (local $b i32)
    (local.set $t (i32.shl (local.get $c) (i32.const 5)))
    (local.set $lo (v128.load (local.get $t)))
    (local.set $hi (v128.load offset=16 (local.get $t)))
    (local.set $m (i8x16.splat (i32.const 15)))
    (local.set $end (i32.and (local.get $len) (i32.const -16)))
    (block $done
      (loop $vec
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $x (v128.load (i32.add (local.get $dst) (local.get $i))))
        (v128.store (i32.add (local.get $dst) (local.get $i))
          (v128.xor
            (i8x16.swizzle (local.get $lo) (v128.and (local.get $x) (local.get $m)))
            (i8x16.swizzle (local.get $hi) (i8x16.shr_u (local.get $x) (i32.const 4)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $vec)))
    (block $done2
      (loop $byte
        (br_if $done2 (i32.ge_u (local.get $i) (local.get $len)))
        (local.set $b (i32.load8_u (i32.add (local.get $dst) (local.get $i))))
        (i32.store8 (i32.add (local.get $dst) (local.get $i))
          (i32.xor (i32.load8_u (i32.add (local.get $t) (i32.and (local.get $b) (i32.const 15))))
                   (i32.load8_u offset=16 (i32.add (local.get $t) (i32.shr_u (local.get $b) (i32.const 4))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $byte))))

  ;; dst = XOR of the n >= 1 symbols whose addresses are at $lst (dst may be one of them: each
  ;; 32-byte chunk is read from every source before it is written). One pass over memory instead
  ;; of one read-modify-write of dst per source.
  (func $xorn (export "xorn") (param $dst i32) (param $lst i32) (param $n i32) (param $len i32)
    (local $i i32) (local $j i32) (local $end i32) (local $lend i32) (local $a v128) (local $b v128) (local $s i32) (local $x i32)
    (local.set $lend (i32.add (local.get $lst) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $end (i32.and (local.get $len) (i32.const -32)))
    (block $done32
      (loop $c32
        (br_if $done32 (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $s (i32.add (i32.load (local.get $lst)) (local.get $i)))
        (local.set $a (v128.load (local.get $s)))
        (local.set $b (v128.load offset=16 (local.get $s)))
        (local.set $j (i32.add (local.get $lst) (i32.const 4)))
        (block $dj
          (loop $lj
            (br_if $dj (i32.ge_u (local.get $j) (local.get $lend)))
            (local.set $s (i32.add (i32.load (local.get $j)) (local.get $i)))
            (local.set $a (v128.xor (local.get $a) (v128.load (local.get $s))))
            (local.set $b (v128.xor (local.get $b) (v128.load offset=16 (local.get $s))))
            (local.set $j (i32.add (local.get $j) (i32.const 4)))
            (br $lj)))
        (v128.store (i32.add (local.get $dst) (local.get $i)) (local.get $a))
        (v128.store offset=16 (i32.add (local.get $dst) (local.get $i)) (local.get $b))
        (local.set $i (i32.add (local.get $i) (i32.const 32)))
        (br $c32)))
    (block $done1
      (loop $c1
        (br_if $done1 (i32.ge_u (local.get $i) (local.get $len)))
        (local.set $x (i32.load8_u (i32.add (i32.load (local.get $lst)) (local.get $i))))
        (local.set $j (i32.add (local.get $lst) (i32.const 4)))
        (block $dk
          (loop $lk
            (br_if $dk (i32.ge_u (local.get $j) (local.get $lend)))
            (local.set $x (i32.xor (local.get $x) (i32.load8_u (i32.add (i32.load (local.get $j)) (local.get $i)))))
            (local.set $j (i32.add (local.get $j) (i32.const 4)))
            (br $lk)))
        (i32.store8 (i32.add (local.get $dst) (local.get $i)) (local.get $x))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $c1))))

  ;; Replays n plan ops stored at $plan on slots at $base + slot * $stride, $len bytes each.
  (func (export "run") (param $plan i32) (param $n i32) (param $base i32) (param $stride i32) (param $len i32)
    (local $p i32) (local $end i32) (local $op i32) (local $dst i32) (local $src i32) (local $c i32)
    (local $q i32) (local $cnt i32) (local $nsrc i32)
    (local.set $p (local.get $plan))
    (local.set $end (i32.add (local.get $plan) (i32.shl (local.get $n) (i32.const 4))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $op (i32.load (local.get $p)))
        (local.set $dst (i32.add (local.get $base) (i32.mul (i32.load offset=4 (local.get $p)) (local.get $stride))))
        (local.set $src (i32.add (local.get $base) (i32.mul (i32.load offset=8 (local.get $p)) (local.get $stride))))
        (local.set $c (i32.load offset=12 (local.get $p)))
        ;; A copy or XOR into dst followed by XORs into the same dst (a chain C[c] = D[p] + ...):
        ;; fused into one xorn over up to 64 sources.
        (if (i32.le_u (local.get $op) (i32.const 1))
          (then
            (local.set $cnt (i32.const 0))
            (if (local.get $op)
              (then
                (i32.store (i32.const 8192) (local.get $dst))
                (local.set $cnt (i32.const 1))))
            (i32.store (i32.add (i32.const 8192) (i32.shl (local.get $cnt) (i32.const 2))) (local.get $src))
            (local.set $cnt (i32.add (local.get $cnt) (i32.const 1)))
            (block $stop
              (loop $more
                (br_if $stop (i32.ge_u (local.get $cnt) (i32.const 64)))
                (local.set $q (i32.add (local.get $p) (i32.const 16)))
                (br_if $stop (i32.ge_u (local.get $q) (local.get $end)))
                (br_if $stop (i32.ne (i32.load (local.get $q)) (i32.const 1)))
                (br_if $stop (i32.ne (local.get $dst)
                  (i32.add (local.get $base) (i32.mul (i32.load offset=4 (local.get $q)) (local.get $stride)))))
                (local.set $nsrc (i32.add (local.get $base) (i32.mul (i32.load offset=8 (local.get $q)) (local.get $stride))))
                ;; dst ^= dst zeroes dst: not a chain member.
                (br_if $stop (i32.eq (local.get $nsrc) (local.get $dst)))
                (i32.store (i32.add (i32.const 8192) (i32.shl (local.get $cnt) (i32.const 2))) (local.get $nsrc))
                (local.set $cnt (i32.add (local.get $cnt) (i32.const 1)))
                (local.set $p (local.get $q))
                (br $more)))
            (call $xorn (local.get $dst) (i32.const 8192) (local.get $cnt) (local.get $len))
            (local.set $p (i32.add (local.get $p) (i32.const 16)))
            (br $next)))
        (block $b4 (block $b3 (block $b2 (block $b1 (block $b0
          (br_table $b0 $b1 $b2 $b3 $b4 $b4 (local.get $op)))
          ;; 0: copy
          (memory.copy (local.get $dst) (local.get $src) (local.get $len))
          (br $b4))
          ;; 1: xor
          (call $xor (local.get $dst) (local.get $src) (local.get $len))
          (br $b4))
          ;; 2: muladd
          (if (i32.eq (local.get $c) (i32.const 1))
            (then (call $xor (local.get $dst) (local.get $src) (local.get $len)))
            (else (if (local.get $c) (then (call $muladd (local.get $dst) (local.get $src) (local.get $c) (local.get $len))))))
          (br $b4))
          ;; 3: mul
          (if (i32.eqz (local.get $c))
            (then (memory.fill (local.get $dst) (i32.const 0) (local.get $len)))
            (else (if (i32.ne (local.get $c) (i32.const 1)) (then (call $mul (local.get $dst) (local.get $c) (local.get $len))))))
          (br $b4))
        ;; 4: zero (and anything else; plan.ts only emits 0..4)
        (if (i32.eq (local.get $op) (i32.const 4))
          (then (memory.fill (local.get $dst) (i32.const 0) (local.get $len))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $next))))
)
