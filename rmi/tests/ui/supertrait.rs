pub trait Named {
    fn name(&self) -> String;
}

#[rmi::expose]
pub trait Greeter: Named {
    async fn welcome_message(&self, name: String) -> String;
}

fn main() {}
