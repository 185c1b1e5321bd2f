//! cgroup v2: value types and parsers for the interface files.

pub mod parse;
mod value;

pub use parse::{CgroupEvents, CpuStat, IoStat, MemoryEvents, MemoryStat, PidsEvents};
pub use value::{Bytes, CpuList, CpuMax, Device, HugePageSize, IoMax, Max, Weight};
