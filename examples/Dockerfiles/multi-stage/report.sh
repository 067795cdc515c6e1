#!/bin/sh
echo "built in stage 'build' on $(uname -m)"
for i in 1 2 3; do echo "line $i"; done
