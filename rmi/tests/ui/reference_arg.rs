#[rmi::expose]
pub trait Stats {
    async fn sum(&self, values: &Vec<u64>) -> u64;
}

fn main() {}
