fn main() {
    println!("synack: under construction");
}
