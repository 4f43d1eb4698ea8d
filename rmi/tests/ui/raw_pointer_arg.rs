#[rmi::expose]
pub trait Buffer {
    async fn fill(&self, data: *const u8, len: usize);
}

fn main() {}
