module github.com/hookrelay/hookrelay

go 1.26.8
