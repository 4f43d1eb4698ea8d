#[rmi::expose]
pub trait Printer {
    async fn print(&self, value: Box<dyn std::fmt::Display>);
}

fn main() {}
