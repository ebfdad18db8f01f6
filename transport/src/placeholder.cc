// Placeholder translation unit until the channels land.
