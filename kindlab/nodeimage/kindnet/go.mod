module kindlab.invalid/kindnet

go 1.24
