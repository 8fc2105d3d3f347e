//! Codec micro-benchmarks: parse and serialize throughput and heap allocations per frame,
//! counted by a global allocator wrapper.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde_json::{json, Value};
use stomp_rooms::stomp::{Command, Decoded, Decoder, Frame, Limits, Version};

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

pub struct CountingAllocator;

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

const FRAMES: usize = 20_000;
const ROUNDS: usize = 5;

fn sample_frame(n: usize) -> Frame {
    Frame::new(Command::Send)
        .with_header("destination", "/topic/chat")
        .with_header("content-type", "text/plain")
        .with_header("x-client", &format!("bench-{}", n % 100))
        .with_body(vec![b'x'; 100])
}

pub fn run() -> Value {
    let frames: Vec<Frame> = (0..FRAMES).map(sample_frame).collect();
    let mut input = Vec::new();
    for frame in &frames {
        frame.encode_into(&mut input, Some(Version::V1_2));
    }

    let (mut parse_best, mut parse_allocs) = (f64::MAX, 0);
    for _ in 0..ROUNDS {
        let mut decoder = Decoder::new(Limits::default());
        decoder.set_version(Version::V1_2);
        let allocations = ALLOCATIONS.load(Ordering::Relaxed);
        let started = Instant::now();
        decoder.push(&input);
        let mut decoded = 0;
        while let Ok(Some(item)) = decoder.next_item() {
            if let Decoded::Frame(frame) = item {
                decoded += std::hint::black_box(frame).body.len().min(1);
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        assert_eq!(decoded, FRAMES);
        parse_best = parse_best.min(seconds);
        parse_allocs = ALLOCATIONS.load(Ordering::Relaxed) - allocations;
    }

    let (mut serialize_best, mut serialize_allocs, mut output_bytes) = (f64::MAX, 0, 0);
    for _ in 0..ROUNDS {
        let allocations = ALLOCATIONS.load(Ordering::Relaxed);
        let started = Instant::now();
        let mut bytes = 0;
        for frame in &frames {
            bytes += std::hint::black_box(frame.encode(Some(Version::V1_2))).len();
        }
        serialize_best = serialize_best.min(started.elapsed().as_secs_f64());
        serialize_allocs = ALLOCATIONS.load(Ordering::Relaxed) - allocations;
        output_bytes = bytes;
    }

    let megabytes = input.len() as f64 / 1e6;
    json!({
        "scenario": "codec", "frames": FRAMES, "frame_bytes": input.len() / FRAMES,
        "parse_mb_per_s": megabytes / parse_best, "parse_frames_per_s": FRAMES as f64 / parse_best,
        "parse_allocations_per_frame": parse_allocs as f64 / FRAMES as f64,
        "serialize_mb_per_s": output_bytes as f64 / 1e6 / serialize_best,
        "serialize_frames_per_s": FRAMES as f64 / serialize_best,
        "serialize_allocations_per_frame": serialize_allocs as f64 / FRAMES as f64,
    })
}
