//! Every shape of argument and result users need, and one type serving two exposed traits.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Point {
    pub x: i32,
    pub y: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Shape {
    Dot(Point),
    Line { from: Point, to: Point },
    Nothing,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum LookupError {
    NotFound(String),
    Forbidden,
}

#[rmi::expose]
pub trait Shapes {
    async fn ping(&self);
    async fn count(&self) -> u64;
    async fn origin(&self) -> Point;
    async fn move_by(&self, point: Point, dx: i32, dy: i32) -> Point;
    async fn largest(&self, shapes: Vec<Shape>) -> Option<Shape>;
    async fn tags(&self, tags: HashMap<String, Vec<u8>>) -> HashMap<String, usize>;
    async fn pair(&self, pair: (u8, String), unit: ()) -> (String, u8);
    async fn lookup(&self, name: String) -> Result<Shape, LookupError>;
    async fn nested(
        &self,
        table: Option<HashMap<u32, (Vec<Shape>, Option<String>)>>,
    ) -> Result<Vec<(u32, Point)>, LookupError>;
}

#[rmi::expose]
pub trait Health {
    async fn alive(&self) -> bool;
}

struct Service;

impl Shapes for Service {
    async fn ping(&self) {}
    async fn count(&self) -> u64 {
        0
    }
    async fn origin(&self) -> Point {
        Point { x: 0, y: 0 }
    }
    async fn move_by(&self, point: Point, dx: i32, dy: i32) -> Point {
        Point {
            x: point.x + dx,
            y: point.y + dy,
        }
    }
    async fn largest(&self, shapes: Vec<Shape>) -> Option<Shape> {
        shapes.into_iter().next()
    }
    async fn tags(&self, tags: HashMap<String, Vec<u8>>) -> HashMap<String, usize> {
        tags.into_iter().map(|(k, v)| (k, v.len())).collect()
    }
    async fn pair(&self, pair: (u8, String), _unit: ()) -> (String, u8) {
        (pair.1, pair.0)
    }
    async fn lookup(&self, name: String) -> Result<Shape, LookupError> {
        Err(LookupError::NotFound(name))
    }
    async fn nested(
        &self,
        _table: Option<HashMap<u32, (Vec<Shape>, Option<String>)>>,
    ) -> Result<Vec<(u32, Point)>, LookupError> {
        Err(LookupError::Forbidden)
    }
}

impl Health for Service {
    async fn alive(&self) -> bool {
        true
    }
}

#[allow(dead_code)]
async fn serve() -> Result<(), rmi::Error> {
    let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
    let _shapes = daemon.register::<ShapesProxy, _>(Service)?;
    let _health = daemon.register::<HealthProxy, _>(Service)?;
    daemon.serve().await
}

#[allow(dead_code)]
async fn call(uri: rmi::ObjectUri) -> Result<(), rmi::Error> {
    let shapes = ShapesProxy::connect(&uri).await?;
    shapes.ping().await?;
    let _: u64 = shapes.count().await?;
    let _: Option<Shape> = shapes.largest(vec![Shape::Nothing]).await?;
    let _: (String, u8) = shapes.pair((1, "one".into()), ()).await?;
    let _: Result<Shape, LookupError> = shapes.lookup("x".into()).await?;
    let _: Result<Vec<(u32, Point)>, LookupError> = shapes.nested(None).await?;
    Ok(())
}

fn main() {}
