//! Compiles `c/longdouble.c`: Redis's `long double` `INCRBYFLOAT` arithmetic, used by
//! `src/float.rs`.

fn main() {
    println!("cargo:rerun-if-changed=c/longdouble.c");
    cc::Build::new()
        .file("c/longdouble.c")
        .warnings(true)
        .extra_warnings(true)
        .compile("ringcache_longdouble");
}
