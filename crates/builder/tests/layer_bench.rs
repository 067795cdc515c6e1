//! gzip throughput of a 200 MiB random layer: flate2 (zlib-rs) against gzp
//! with the settings write_layer uses. A measurement, not a timed test:
//! `cargo test --release -p wharf-builder --test layer_bench -- --ignored --nocapture`.

use std::io::Write;
use std::time::Instant;

const MIB: usize = 1 << 20;

fn random(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn rate(len: usize, t: Instant) -> f64 {
    len as f64 / MIB as f64 / t.elapsed().as_secs_f64()
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture in release mode"]
fn gzip_throughput_of_a_200_mib_random_layer() {
    let data = random(200 * MIB);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let t = Instant::now();
    let mut gz = flate2::GzBuilder::new().mtime(0).write(std::io::sink(), flate2::Compression::new(6));
    for chunk in data.chunks(MIB) {
        gz.write_all(chunk).unwrap();
    }
    gz.finish().unwrap();
    println!("flate2 zlib-rs level 6, 1 thread: {:.0} MiB/s", rate(data.len(), t));
    for n in [1, threads] {
        let t = Instant::now();
        let mut gz = gzp::par::compress::ParCompressBuilder::<gzp::deflate::Gzip>::new()
            .num_threads(n)
            .unwrap()
            .buffer_size(MIB)
            .unwrap()
            .compression_level(gzp::Compression::new(6))
            .from_writer(std::io::sink());
        for chunk in data.chunks(MIB) {
            gz.write_all(chunk).unwrap();
        }
        gzp::ZWriter::finish(&mut gz).unwrap();
        println!("gzp level 6, {n} thread(s): {:.0} MiB/s", rate(data.len(), t));
    }
}
