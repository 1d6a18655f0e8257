fn main() {
    println!("gunicorn");
}
