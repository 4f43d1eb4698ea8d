#[rmi::expose]
pub trait Session {
    async fn close(self);
}

fn main() {}
