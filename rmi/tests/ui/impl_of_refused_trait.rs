// A trait the macro refuses reports only its own error: the `impl` below adds no
// "cannot find trait" noise.
#[rmi::expose]
pub trait Greeter {
    async fn welcome_message(&self, name: &str) -> String;
}

struct Server;

impl Greeter for Server {
    async fn welcome_message(&self, name: &str) -> String {
        format!("Hi welcome {name}")
    }
}

fn main() {}
