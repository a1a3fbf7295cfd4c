#!/bin/bash
cd /work/bench-out/p27r
until grep -q "^b32cos " results.txt && grep -q "^b128cos " results.txt; do sleep 10; done
./screen.sh cos1 2560 --lr-schedule cosine --lr 1e-3
