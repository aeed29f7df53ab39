// The AssemblyScript scalar types, as plain TypeScript sees them, so that host
// code can import constants from the portable core (assembly/state.ts) and
// type-check. The core itself is type-checked by asc.
declare type i32 = number;
declare type u32 = number;
declare type u8 = number;
declare type u16 = number;
declare type usize = number;
declare type bool = boolean;
