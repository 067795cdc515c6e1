#include <stdio.h>

int main(int argc, char **argv) {
    printf("hello, %s, from a static C binary built by wharf\n", argc > 1 ? argv[1] : "world");
    return 0;
}
